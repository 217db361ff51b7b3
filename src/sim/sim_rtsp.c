/* SPDX-License-Identifier: MIT */
/*
 * The simulated RTSPS camera (X1/H2/P2 port 322): gst-rtsp-server over TLS with basic
 * auth bblp + access code at /streaming/live/1, H.264 from a moving test picture at
 * --video WxH@FPS with a keyframe every second, RTP over TCP interleaved only, one shared
 * encoder for every viewer, the printer's connection limit, SIGUSR1 drops every viewer
 * and --stall-after stops the video without closing (a hung printer). Viewers' keepalive
 * requests are counted.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "sim.h"

#ifdef HAVE_RTSP

#include "../identity.h"
#include "../log.h"
#include "../rtsp_server.h"
#include "../util.h"

#define SIM_RTSP_PATH        "/streaming/live/1"
#define SIM_RTSP_USER        "bblp"
#define SIM_LAUNCH_MAX       1024
#define SIM_BITS_PER_KBIT    1000u
#define SIM_PIXELS_PER_BIT   7u      /* ~0.14 bit per pixel: a light test picture */
#define SIM_BITRATE_MIN_KBIT 100u
#define SIM_BITRATE_MAX_KBIT 20000u

static unsigned bitrate_kbit(const struct sim *s)
{
    unsigned long long bits = (unsigned long long)s->width * s->height * s->video_fps /
                              SIM_PIXELS_PER_BIT;
    unsigned long long kbit = bits / SIM_BITS_PER_KBIT;

    if (kbit < SIM_BITRATE_MIN_KBIT) {
        return SIM_BITRATE_MIN_KBIT;
    }
    return kbit > SIM_BITRATE_MAX_KBIT ? SIM_BITRATE_MAX_KBIT : (unsigned)kbit;
}

static int make_launch(const struct sim *s, char *out, size_t len)
{
    /* The clock in the picture helps people; it is optional (pango plugin). */
    GstElementFactory *overlay = gst_element_factory_find("timeoverlay");
    int n = snprintf(out, len,
                     "( videotestsrc is-live=true pattern=ball ! "
                     "video/x-raw,width=%u,height=%u,framerate=%u/1 ! %s"
                     "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=%u "
                     "bitrate=%u ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )",
                     s->width, s->height, s->video_fps, overlay ? "timeoverlay ! " : "",
                     s->video_fps, bitrate_kbit(s));

    if (overlay != NULL) {
        gst_object_unref(overlay);
    }
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static int need_elements(char *err, size_t errlen)
{
    static const struct rtsp_element_need need[] = {
        { "videotestsrc", "gstreamer1.0-plugins-base", "gst-plugins-base" },
        { "x264enc", "gstreamer1.0-plugins-ugly", "gst-plugins-ugly" },
        { "h264parse", "gstreamer1.0-plugins-bad", "gst-plugins-bad" },
        { "rtph264pay", "gstreamer1.0-plugins-good", "gst-plugins-good" },
    };

    return rtsp_need_elements(need, PP_ARRAY_LEN(need), err, errlen);
}

/* --stall-after: after that long the encoder's output is dropped, the viewers stay. */
struct stall {
    gint64 stall_at_us;   /* monotonic; 0 until the first buffer */
    gint64 after_us;
    gint logged;
};

static GstPadProbeReturn stall_probe(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    struct stall *st = data;
    gint64 now = g_get_monotonic_time();

    (void)pad;
    (void)info;
    if (st->stall_at_us == 0) {
        st->stall_at_us = now + st->after_us;
    }
    if (now < st->stall_at_us) {
        return GST_PAD_PROBE_OK;
    }
    if (g_atomic_int_compare_and_exchange(&st->logged, 0, 1)) {
        log_info("rtsp", 0, "stalling (--stall-after): no more video, connections stay open");
    }
    return GST_PAD_PROBE_DROP;
}

static void on_media_configure(GstRTSPMediaFactory *factory, GstRTSPMedia *media, gpointer data)
{
    struct sim *s = data;
    GstElement *bin, *pay;
    GstPad *pad;
    struct stall *st;

    (void)factory;
    if (s->stall_after_s <= 0) {
        return;
    }
    bin = gst_rtsp_media_get_element(media);
    pay = gst_bin_get_by_name(GST_BIN(bin), "pay0");
    pad = pay ? gst_element_get_static_pad(pay, "src") : NULL;
    if (pad != NULL) {
        st = g_new0(struct stall, 1);
        st->after_us = (gint64)s->stall_after_s * G_USEC_PER_SEC;
        gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                          stall_probe, st, g_free);
        gst_object_unref(pad);
    }
    if (pay != NULL) {
        gst_object_unref(pay);
    }
    gst_object_unref(bin);
}

int sim_rtsp_start(struct sim *s, char *err, size_t errlen)
{
    struct tls_identity id;
    struct rtsp_server_opts o;
    struct rtsp_server *rs;
    GstRTSPMediaFactory *f;
    char launch[SIM_LAUNCH_MAX];

    if (rtsp_gst_init(err, errlen) != 0 || need_elements(err, errlen) != 0) {
        return -1;
    }
    if (make_launch(s, launch, sizeof(launch)) != 0) {
        snprintf(err, errlen, "--video %ux%u@%u does not fit a pipeline", s->width, s->height,
                 s->video_fps);
        return -1;
    }
    identity_paths(&s->cfg, &id); /* setup() generated them */
    memset(&o, 0, sizeof(o));
    o.name = "rtsp";
    o.bind_addr = s->cfg.bind_addr;
    o.port = s->cfg.ports[PP_SVC_RTSP];
    o.cert_file = id.cert;
    o.key_file = id.key;
    o.user = SIM_RTSP_USER;
    o.password = s->cfg.access_code;
    o.max_clients = s->limits[PP_SVC_RTSP];
    o.current = &s->rtsp_current;
    o.total = &s->rtsp_total;
    o.keepalives = &s->rtsp_keepalives;
    rs = rtsp_server_new(&o, err, errlen);
    if (rs == NULL) {
        return -1;
    }
    f = gst_rtsp_media_factory_new();
    gst_rtsp_media_factory_set_launch(f, launch);
    /* One encoder for every viewer, as the printer has one camera. */
    gst_rtsp_media_factory_set_shared(f, TRUE);
    gst_rtsp_media_factory_set_protocols(f, GST_RTSP_LOWER_TRANS_TCP);
    g_signal_connect(f, "media-configure", G_CALLBACK(on_media_configure), s);
    rtsp_server_mount(rs, SIM_RTSP_PATH, f);
    g_object_unref(f);
    if (rtsp_server_start(rs, err, errlen) != 0) {
        rtsp_server_free(rs);
        return -1;
    }
    log_info("rtsp", 0, "camera: H.264 %ux%u at %u fps (%u kbit/s) at %s", s->width, s->height,
             s->video_fps, bitrate_kbit(s), SIM_RTSP_PATH);
    s->rtsp = rs;
    return 0;
}

void sim_rtsp_stop(struct sim *s)
{
    rtsp_server_free(s->rtsp);
    s->rtsp = NULL;
    rtsp_gst_shutdown(); /* the simulator stops only to exit */
}

void sim_rtsp_drop_all(struct sim *s)
{
    /* Runs the close in the server's thread; counts fall as clients go. */
    rtsp_server_drop_all(s->rtsp);
    sim_status_changed(s);
}

#else /* !HAVE_RTSP */

int sim_rtsp_start(struct sim *s, char *err, size_t errlen)
{
    (void)s;
    snprintf(err, errlen, "this build has no RTSPS support (configured with --disable-rtsp)");
    return -1;
}

void sim_rtsp_stop(struct sim *s)
{
    (void)s;
}

void sim_rtsp_drop_all(struct sim *s)
{
    (void)s;
}

#endif
