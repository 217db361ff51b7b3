/* SPDX-License-Identifier: MIT */
/*
 * The RTSPS camera service (:322), built as the module rtsp.so that svc_rtsp.c loads
 * when the service first starts, so a daemon without an RTSPS camera never maps
 * GStreamer. gst-rtsp-server serves /streaming/live/1 and /stream
 * from ONE shared media that pulls the printer's stream with rtspsrc over RTSPS and
 * repacketises it (rtph264depay ! h264parse ! rtph264pay), never decoding. The media is
 * built when a viewer asks and released --camera-linger seconds after the last viewer
 * left (the service holds one prepare count of its own meanwhile, so the pipeline keeps
 * playing and a returning viewer starts at once). Upstream loss (an ERROR or EOS on the
 * media's pipeline, or no video for PP_RTSP_DATA_TIMEOUT_MS), lingering or not, closes
 * that media's viewers and unprepares it; a generation number in the media key makes the
 * next viewer build a fresh upstream at once. While it plays, an RTSP keepalive goes to
 * the printer every PP_RTSP_KEEPALIVE_MS.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

#include "detect.h"
#include "identity.h"
#include "log.h"
#include "rtsp_server.h"
#include "service.h"
#include "svc_rtsp.h"
#include "trust.h"
#include "util.h"

#define SVC             "rtsp"
#define RTSP_USER       "bblp"
#define PRINTER_PATH    "/streaming/live/1"
#define SEED_PATH       "/stream"
#define SRC_NAME        "printer"
#define PAY_NAME        "pay0"
#define LAUNCH_MAX      (PP_HOST_MAX + 256)

struct rtsp_svc {
    const struct pp_config *cfg;
    struct rtsp_server *rs;
    char location[PP_HOST_MAX + 64];  /* no credentials: those go in properties */
    atomic_uint generation;           /* bumped on loss: new viewers get a new media */
    atomic_bool no_keepalive;         /* the printer refused an RTSP keepalive */
    pthread_mutex_t lock;             /* guards cur and rs against stop */
    struct cam_media *cur;            /* newest media, for the data watchdog */
};

/* Per media: what the watchdog and the loss handler need. */
struct cam_media {
    atomic_int refs;
    struct rtsp_svc *sv;
    GWeakRef media;
    unsigned long id;
    atomic_llong last_data_ms;        /* last buffer through the payloader */
    atomic_bool lost;
    atomic_bool prepared;             /* between its prepared and unprepared signals */
    bool was_playing;                 /* watchdog's view at its last look */
    bool held;                        /* server thread: our own prepare count (linger) */
    int64_t idle_since_ms;            /* server thread: no viewer since then; 0 = viewers */
    int64_t keepalive_ms;             /* server thread: last keepalive sent */
    atomic_bool keepalive_pending;    /* one in flight at a time */
};

/* Static: GStreamer threads may still run callbacks while the daemon exits. */
static struct rtsp_svc the_svc = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct cam_media *cm_ref(struct cam_media *cm)
{
    atomic_fetch_add(&cm->refs, 1);
    return cm;
}

static void cm_unref(struct cam_media *cm)
{
    if (cm != NULL && atomic_fetch_sub(&cm->refs, 1) == 1) {
        g_weak_ref_clear(&cm->media);
        g_free(cm);
    }
}

static void cm_unref_notify(gpointer data)
{
    cm_unref(data);
}

static void cm_unref_closure(gpointer data, GClosure *closure)
{
    (void)closure;
    cm_unref(data);
}

/* ---- the media key: one media for every mount and query string ----------- */

typedef struct {
    GstRTSPMediaFactory parent;
    struct rtsp_svc *sv;
} PpCamFactory;

typedef struct {
    GstRTSPMediaFactoryClass parent_class;
} PpCamFactoryClass;

GType pp_cam_factory_get_type(void);
G_DEFINE_TYPE(PpCamFactory, pp_cam_factory, GST_TYPE_RTSP_MEDIA_FACTORY)

static gchar *cam_gen_key(GstRTSPMediaFactory *f, const GstRTSPUrl *url)
{
    (void)url;
    /* The default key is the request URL: two mounts would mean two printer streams. */
    return g_strdup_printf("printer-camera-%u",
                           atomic_load(&((PpCamFactory *)f)->sv->generation));
}

static void pp_cam_factory_class_init(PpCamFactoryClass *klass)
{
    GST_RTSP_MEDIA_FACTORY_CLASS(klass)->gen_key = cam_gen_key;
}

static void pp_cam_factory_init(PpCamFactory *f)
{
    (void)f;
}

/* ---- the printer's certificate goes through the trust policy -------------- */

static X509 *gtls_to_x509(GTlsCertificate *c)
{
    GByteArray *der = NULL;
    const unsigned char *p;
    X509 *x = NULL;

    g_object_get(c, "certificate", &der, NULL);
    if (der != NULL) {
        p = der->data;
        x = d2i_X509(NULL, &p, (long)der->len);
        g_byte_array_unref(der);
    }
    return x;
}

/* rtspsrc asks whenever GLib's own validation fails, which it always does for a printer
 * (a private CA, CN = serial): decide with the pin or --printer-ca policy instead. */
static gboolean on_accept_certificate(GstElement *src, GTlsConnection *conn,
                                      GTlsCertificate *peer, GTlsCertificateFlags errors,
                                      gpointer data)
{
    struct rtsp_svc *sv = data;
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *leaf = gtls_to_x509(peer);
    enum trust_result r;
    char err[512] = "";

    (void)src;
    (void)conn;
    (void)errors;
    for (GTlsCertificate *c = g_tls_certificate_get_issuer(peer); c != NULL && chain != NULL;
         c = g_tls_certificate_get_issuer(c)) {
        X509 *x = gtls_to_x509(c);

        if (x != NULL && sk_X509_push(chain, x) == 0) {
            X509_free(x);
        }
    }
    r = trust_check_cert(sv->cfg, leaf, chain, err, sizeof(err));
    if (r != TRUST_OK) {
        log_error(SVC, 0, "not trusting the printer's camera: %s", err);
    }
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    return r == TRUST_OK;
}

/* ---- upstream loss --------------------------------------------------------- */

struct viewer_match {
    GstRTSPMedia *media;
    bool close;                       /* false: only count them */
    bool found;
    unsigned closed;                  /* viewers closed, or counted */
};

static GstRTSPFilterResult match_session_media(GstRTSPSession *sess, GstRTSPSessionMedia *sm,
                                               gpointer data)
{
    struct viewer_match *m = data;

    (void)sess;
    if (gst_rtsp_session_media_get_media(sm) == m->media) {
        m->found = true;
    }
    return GST_RTSP_FILTER_KEEP;
}

static GstRTSPFilterResult match_session(GstRTSPClient *client, GstRTSPSession *sess,
                                         gpointer data)
{
    (void)client;
    g_list_free(gst_rtsp_session_filter(sess, match_session_media, data));
    return GST_RTSP_FILTER_KEEP;
}

static GstRTSPFilterResult close_viewers_of(GstRTSPServer *server, GstRTSPClient *client,
                                            gpointer data)
{
    struct viewer_match *m = data;

    (void)server;
    m->found = false;
    g_list_free(gst_rtsp_client_session_filter(client, match_session, m));
    if (m->found) {
        m->closed++;
        return m->close ? GST_RTSP_FILTER_REMOVE : GST_RTSP_FILTER_KEEP;
    }
    return GST_RTSP_FILTER_KEEP;
}

/* Server thread: give back the prepare count the linger held; the media is unprepared
 * when no viewer holds one either. */
static void release_hold(struct cam_media *cm, GstRTSPMedia *media)
{
    if (cm->held) {
        cm->held = false;
        gst_rtsp_media_unprepare(media);
    }
}

/* Server thread: one prepare count of our own on a prepared, healthy media, so it stays
 * prepared and playing when its last viewer leaves (gst-rtsp-server changes the pipeline's
 * state only when no other prepare count is left). On a media that is in error or already
 * unpreparing this fails and holds nothing; NULL thread: a prepared media needs none. */
static void take_hold(struct cam_media *cm, GstRTSPMedia *media)
{
    if (!cm->held && cm->sv->cfg->camera_linger_s > 0 && atomic_load(&cm->prepared) &&
        !atomic_load(&cm->lost)) {
        cm->held = gst_rtsp_media_prepare(media, NULL);
        cm->idle_since_ms = 0;
    }
}

static gboolean hold_now(gpointer data)
{
    struct cam_media *cm = data;
    GstRTSPMedia *media = g_weak_ref_get(&cm->media);

    if (media != NULL) {
        take_hold(cm, media);
        g_object_unref(media);
    }
    return G_SOURCE_REMOVE;
}

static gboolean release_now(gpointer data)
{
    struct cam_media *cm = data;
    GstRTSPMedia *media = g_weak_ref_get(&cm->media);

    if (media != NULL) {
        release_hold(cm, media);
        g_object_unref(media);
    }
    return G_SOURCE_REMOVE;
}

/* Any thread: queue fn(cm) on the server thread (nothing when the service stops). */
static void invoke_cm(struct rtsp_svc *sv, struct cam_media *cm, GSourceFunc fn)
{
    pthread_mutex_lock(&sv->lock);
    if (sv->rs != NULL) {
        rtsp_server_invoke(sv->rs, fn, cm_ref(cm), cm_unref_notify);
    }
    pthread_mutex_unlock(&sv->lock);
}

struct loss {
    struct cam_media *cm;
    GstRTSPServer *server;
    char why[256];
};

static void loss_free(gpointer data)
{
    struct loss *l = data;

    cm_unref(l->cm);
    g_object_unref(l->server);
    g_free(l);
}

/* Server thread. The errored media would stay cached, and answer 503, while any viewer
 * holds a session: close those viewers and unprepare it. */
static gboolean handle_loss(gpointer data)
{
    struct loss *l = data;
    GstRTSPMedia *media = g_weak_ref_get(&l->cm->media);
    struct viewer_match m = { .media = media, .close = true };

    if (media == NULL) {
        return G_SOURCE_REMOVE;
    }
    g_list_free(gst_rtsp_server_client_filter(l->server, close_viewers_of, &m));
    log_warn(SVC, l->cm->id, "printer stream lost (%s): closed %u viewer%s; the next viewer "
             "reconnects", l->why, m.closed, m.closed == 1 ? "" : "s");
    release_hold(l->cm, media); /* a broken media never lingers */
    gst_rtsp_media_unprepare(media);
    g_object_unref(media);
    return G_SOURCE_REMOVE;
}

/* Any thread. The first report wins; the rest are echoes of the same loss. */
static void mark_lost(struct cam_media *cm, const char *why)
{
    struct rtsp_svc *sv = cm->sv;
    struct loss *l;

    if (atomic_exchange(&cm->lost, true)) {
        return;
    }
    detect_camera_failed(PP_SVC_RTSP);
    atomic_fetch_add(&sv->generation, 1);
    pthread_mutex_lock(&sv->lock);
    if (sv->rs != NULL) { /* NULL: the service is stopping anyway */
        l = g_new0(struct loss, 1);
        l->cm = cm_ref(cm);
        l->server = g_object_ref(rtsp_server_gst(sv->rs));
        snprintf(l->why, sizeof(l->why), "%s", why);
        rtsp_server_invoke(sv->rs, handle_loss, l, loss_free);
    }
    pthread_mutex_unlock(&sv->lock);
}

/* Streaming threads post here; the bin's own bus never sees these, the pipeline's does. */
static void on_bus_error(GstBus *bus, GstMessage *msg, gpointer data)
{
    GError *gerr = NULL;
    char why[256];

    (void)bus;
    gst_message_parse_error(msg, &gerr, NULL);
    snprintf(why, sizeof(why), "%s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)),
             gerr ? gerr->message : "error");
    g_clear_error(&gerr);
    mark_lost(data, why);
}

static void on_bus_eos(GstBus *bus, GstMessage *msg, gpointer data)
{
    (void)bus;
    (void)msg;
    mark_lost(data, "the printer ended the stream");
}

static GstPadProbeReturn on_data(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    struct cam_media *cm = data;

    (void)pad;
    (void)info;
    atomic_store(&cm->last_data_ms, pp_now_ms());
    return GST_PAD_PROBE_OK;
}

/* The printer's end of stream passing the payloader, in the streaming thread. The
 * pipeline's EOS message comes only once every sink had the event, after the viewers got
 * their RTCP BYE: a viewer leaving on that BYE can get the media unprepared first (no
 * linger), the message is then never posted, and detection would never hear that the
 * camera failed. Nothing else sends EOS down this pipeline (no eos-shutdown). */
static GstPadProbeReturn on_event(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    (void)pad;
    if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_EOS) {
        mark_lost(data, "the printer ended the stream");
    }
    return GST_PAD_PROBE_OK;
}

struct orphans {
    GstRTSPMedia *media;
    GstRTSPServer *server;
    unsigned long id;
};

static void orphans_free(gpointer data)
{
    struct orphans *o = data;

    g_object_unref(o->media);
    g_object_unref(o->server);
    g_free(o);
}

/* Server thread. GStreamer also stops a media on its own (RTCP sender timeout) and then
 * leaves its viewers connected and silent: close them so they reconnect. */
static gboolean close_orphans(gpointer data)
{
    struct orphans *o = data;
    struct viewer_match m = { .media = o->media, .close = true };

    g_list_free(gst_rtsp_server_client_filter(o->server, close_viewers_of, &m));
    if (m.closed > 0) {
        log_warn(SVC, o->id, "printer stream stopped: closed %u viewer%s", m.closed,
                 m.closed == 1 ? "" : "s");
    }
    return G_SOURCE_REMOVE;
}

static void on_unprepared(GstRTSPMedia *media, gpointer data)
{
    struct cam_media *cm = data;
    struct rtsp_svc *sv = cm->sv;
    struct orphans *o;

    bool stale = pp_now_ms() - atomic_load(&cm->last_data_ms) > PP_RTSP_STALE_MS;

    log_info(SVC, cm->id, "printer stream closed");
    atomic_store(&cm->prepared, false);
    pthread_mutex_lock(&sv->lock);
    if (sv->cur == cm) {
        sv->cur = NULL;
        cm_unref(cm);
    }
    /* Video was flowing until now: the last viewer left, nobody to close. */
    if (sv->rs != NULL && stale && !atomic_load(&cm->lost)) {
        o = g_new0(struct orphans, 1);
        o->media = g_object_ref(media);
        o->server = g_object_ref(rtsp_server_gst(sv->rs));
        o->id = cm->id;
        rtsp_server_invoke(sv->rs, close_orphans, o, orphans_free);
    }
    pthread_mutex_unlock(&sv->lock);
}

/* The thread of the viewer that built the media, once it is prerolled. */
static void on_prepared(GstRTSPMedia *media, gpointer data)
{
    struct cam_media *cm = data;

    (void)media;
    atomic_store(&cm->prepared, true);
    if (cm->sv->cfg->camera_linger_s > 0) {
        invoke_cm(cm->sv, cm, hold_now);
    }
}

/* Prepared and its pipeline PLAYING: video must flow. Our own prepared flag rather than
 * gst_rtsp_media_get_status, which blocks while a media prepares (a slow printer). */
static bool media_playing(struct cam_media *cm)
{
    GstRTSPMedia *media = g_weak_ref_get(&cm->media);
    GstElement *bin, *pipeline;
    bool playing = false;

    if (media == NULL) {
        return false;
    }
    if (atomic_load(&cm->prepared)) {
        bin = gst_rtsp_media_get_element(media);
        pipeline = GST_ELEMENT(gst_object_get_parent(GST_OBJECT(bin)));
        if (pipeline != NULL) {
            GST_OBJECT_LOCK(pipeline);
            playing = GST_STATE(pipeline) == GST_STATE_PLAYING;
            GST_OBJECT_UNLOCK(pipeline);
            gst_object_unref(pipeline);
        }
        gst_object_unref(bin);
    }
    g_object_unref(media);
    return playing;
}

/* rtspsrc's task thread: the printer's answer to a keepalive. */
static void on_keepalive_reply(GstPromise *promise, gpointer data)
{
    struct cam_media *cm = data;
    const GstStructure *reply;
    int res = GST_RTSP_ERROR, code = 0;
    const char *reason = NULL;

    atomic_store(&cm->keepalive_pending, false);
    /* Not pending any more, so this returns at once; expired: the stream is closing. */
    if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) {
        return;
    }
    reply = gst_promise_get_reply(promise);
    if (reply != NULL) {
        (void)gst_structure_get_int(reply, "rtsp-result", &res);
        (void)gst_structure_get_int(reply, "rtsp-code", &code);
        reason = gst_structure_get_string(reply, "rtsp-reason");
    }
    if (res != GST_RTSP_OK) {
        /* Not sent or not answered: a printer without GET_PARAMETER (its OPTIONS reply
         * does not list it), or the stream is going; the data watchdog sees a loss. */
        log_debug(SVC, cm->id, "RTSP keepalive not answered (%d)", res);
    } else if (code != GST_RTSP_STS_OK && !atomic_exchange(&cm->sv->no_keepalive, true)) {
        /* A printer that refuses them might drop the stream over the next one: stop. */
        log_warn(SVC, cm->id, "the printer refused the RTSP keepalive (GET_PARAMETER: %d "
                 "%s): sending no more, RTCP alone keeps the stream alive", code,
                 reason != NULL ? reason : "");
    }
}

/* Server thread, from the watchdog, while the pipeline plays. rtspsrc sends RTSP
 * keepalives over TCP only when nothing arrives for its tcp-timeout, which never happens
 * while video flows, so only RTCP would show that the proxy is alive. Printers may want
 * an RTSP request within the session timeout (60 s by default): an empty GET_PARAMETER
 * (RFC 2326 10.8) now and then. */
static void keepalive_tick(struct cam_media *cm)
{
    GstRTSPMedia *media;
    GstElement *bin, *src;
    GstPromise *promise;
    gchar *none[] = { NULL };
    gboolean queued = FALSE;
    int64_t now = pp_now_ms();

    if (cm->keepalive_ms == 0) {
        cm->keepalive_ms = now; /* SETUP and PLAY just showed we are alive */
        return;
    }
    if (now - cm->keepalive_ms < PP_RTSP_KEEPALIVE_MS || atomic_load(&cm->sv->no_keepalive) ||
        atomic_load(&cm->keepalive_pending)) {
        return;
    }
    media = g_weak_ref_get(&cm->media);
    if (media == NULL) {
        return;
    }
    cm->keepalive_ms = now;
    bin = gst_rtsp_media_get_element(media);
    src = gst_bin_get_by_name(GST_BIN(bin), SRC_NAME);
    if (src != NULL) {
        promise = gst_promise_new_with_change_func(on_keepalive_reply, cm_ref(cm),
                                                   cm_unref_notify);
        atomic_store(&cm->keepalive_pending, true);
        g_signal_emit_by_name(src, "get-parameters", none, NULL, promise, &queued);
        if (!queued) {
            atomic_store(&cm->keepalive_pending, false);
            log_debug(SVC, cm->id, "RTSP keepalive not queued (rtspsrc is not connected)");
        }
        gst_promise_unref(promise);
        gst_object_unref(src);
    }
    gst_object_unref(bin);
    g_object_unref(media);
}

/* Server thread, from the watchdog: give the linger's hold back once no viewer has used
 * the media for --camera-linger seconds (to the watchdog's period). */
static void linger_tick(struct rtsp_svc *sv, struct cam_media *cm, GstRTSPServer *server)
{
    GstRTSPMedia *media = g_weak_ref_get(&cm->media);
    struct viewer_match m = { .media = media };
    int linger_s = sv->cfg->camera_linger_s;
    int64_t now = pp_now_ms();

    if (media == NULL) {
        return;
    }
    take_hold(cm, media); /* in case the prepared signal's request came too early */
    if (cm->held) {
        g_list_free(gst_rtsp_server_client_filter(server, close_viewers_of, &m));
        if (m.closed > 0) {
            cm->idle_since_ms = 0;
        } else if (cm->idle_since_ms == 0) {
            cm->idle_since_ms = now;
            log_info(SVC, cm->id, "no viewer left: keeping the printer stream open for %d s "
                     "(--camera-linger)", linger_s);
        } else if (now - cm->idle_since_ms >= (int64_t)linger_s * 1000) {
            log_info(SVC, cm->id, "no viewer for %d s: closing the printer stream", linger_s);
            atomic_fetch_add(&sv->generation, 1); /* a viewer arriving now builds afresh */
            release_hold(cm, media);
        }
    }
    g_object_unref(media);
}

/* Server thread, periodic: a hung printer raises no error for a long time. */
static gboolean watchdog(gpointer data)
{
    struct rtsp_svc *sv = data;
    struct cam_media *cm;
    GstRTSPServer *server = NULL;

    pthread_mutex_lock(&sv->lock);
    cm = sv->cur ? cm_ref(sv->cur) : NULL;
    if (cm != NULL && sv->rs != NULL) {
        server = g_object_ref(rtsp_server_gst(sv->rs));
    }
    pthread_mutex_unlock(&sv->lock);
    if (cm == NULL) {
        return G_SOURCE_CONTINUE;
    }
    if (server != NULL) {
        linger_tick(sv, cm, server);
        g_object_unref(server);
    }
    if (!media_playing(cm)) {
        cm->was_playing = false;
        cm->keepalive_ms = 0;
    } else if (!cm->was_playing) {
        /* Grace from now: the clock starts when the pipeline does. */
        cm->was_playing = true;
        atomic_store(&cm->last_data_ms, pp_now_ms());
    } else if (!atomic_load(&cm->lost) &&
               pp_now_ms() - atomic_load(&cm->last_data_ms) > PP_RTSP_DATA_TIMEOUT_MS) {
        mark_lost(cm, "no video from the printer for " G_STRINGIFY(PP_RTSP_DATA_TIMEOUT_MS)
                      " ms");
    } else {
        detect_camera_ok(PP_SVC_RTSP); /* video flows: no need to probe the camera again */
        keepalive_tick(cm);
    }
    cm_unref(cm);
    return G_SOURCE_CONTINUE;
}

/* ---- building a media ------------------------------------------------------ */

static void watch_pipeline(struct cam_media *cm, GstElement *bin)
{
    GstElement *pipeline = GST_ELEMENT(gst_object_get_parent(GST_OBJECT(bin)));
    GstBus *bus;

    if (pipeline == NULL) {
        return;
    }
    bus = gst_element_get_bus(pipeline);
    gst_bus_enable_sync_message_emission(bus);
    g_signal_connect_data(bus, "sync-message::error", G_CALLBACK(on_bus_error), cm_ref(cm),
                          cm_unref_closure, 0);
    g_signal_connect_data(bus, "sync-message::eos", G_CALLBACK(on_bus_eos), cm_ref(cm),
                          cm_unref_closure, 0);
    gst_object_unref(bus);
    gst_object_unref(pipeline);
}

static void watch_data(struct cam_media *cm, GstElement *bin)
{
    GstElement *pay = gst_bin_get_by_name(GST_BIN(bin), PAY_NAME);
    GstPad *pad = pay ? gst_element_get_static_pad(pay, "src") : NULL;

    if (pad != NULL) {
        gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                          on_data, cm_ref(cm), cm_unref_notify);
        gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_event, cm_ref(cm),
                          cm_unref_notify);
        gst_object_unref(pad);
    }
    if (pay != NULL) {
        gst_object_unref(pay);
    }
}

/* A client thread, while the media is being built (before it connects upstream). */
static void on_media_configure(GstRTSPMediaFactory *factory, GstRTSPMedia *media,
                               gpointer data)
{
    struct rtsp_svc *sv = data;
    struct cam_media *cm = g_new0(struct cam_media, 1);
    GstElement *bin = gst_rtsp_media_get_element(media);
    GstElement *src = gst_bin_get_by_name(GST_BIN(bin), SRC_NAME);
    struct cam_media *old;

    (void)factory;
    atomic_init(&cm->refs, 1);
    cm->sv = sv;
    cm->id = service_next_id();
    g_weak_ref_init(&cm->media, media);
    atomic_init(&cm->last_data_ms, pp_now_ms());
    if (src != NULL) {
        /* Credentials as properties: the launch line and the URL stay printable. */
        g_object_set(src, "user-id", RTSP_USER, "user-pw", sv->cfg->access_code,
                     "tcp-timeout", (guint64)PP_RTSP_UPSTREAM_TIMEOUT_US, NULL);
        g_signal_connect(src, "accept-certificate", G_CALLBACK(on_accept_certificate), sv);
        gst_object_unref(src);
    }
    watch_pipeline(cm, bin);
    watch_data(cm, bin);
    g_signal_connect_data(media, "prepared", G_CALLBACK(on_prepared), cm_ref(cm),
                          cm_unref_closure, 0);
    g_signal_connect_data(media, "unprepared", G_CALLBACK(on_unprepared), cm_ref(cm),
                          cm_unref_closure, 0);
    gst_object_unref(bin);
    pthread_mutex_lock(&sv->lock);
    old = sv->cur;
    sv->cur = cm; /* takes the creation reference */
    pthread_mutex_unlock(&sv->lock);
    if (old != NULL) {
        invoke_cm(sv, old, release_now); /* only the newest media may linger */
        cm_unref(old);
    }
    log_info(SVC, cm->id, "opening the printer stream %s", sv->location);
}

static int make_location(struct rtsp_svc *sv, char *err, size_t errlen)
{
    const struct pp_config *cfg = sv->cfg;
    bool v6 = strchr(cfg->printer_host, ':') != NULL;
    int n;

    /* rtsps:// always: some printers redirect requests that use rtsp://. */
    n = snprintf(sv->location, sizeof(sv->location), v6 ? "rtsps://[%s]:%d%s"
                                                        : "rtsps://%s:%d%s",
                 cfg->printer_host, cfg->printer_ports[PP_SVC_RTSP], PRINTER_PATH);
    if (n < 0 || (size_t)n >= sizeof(sv->location) ||
        strpbrk(cfg->printer_host, " \"'()!") != NULL) {
        snprintf(err, errlen, "printer address '%s' cannot be used in an RTSPS URL",
                 cfg->printer_host);
        return -1;
    }
    return 0;
}

static int need_elements(char *err, size_t errlen)
{
    static const struct rtsp_element_need need[] = {
        { "rtspsrc", "gstreamer1.0-plugins-good", "gst-plugins-good" },
        { "rtph264depay", "gstreamer1.0-plugins-good", "gst-plugins-good" },
        { "h264parse", "gstreamer1.0-plugins-bad", "gst-plugins-bad" },
        { "rtph264pay", "gstreamer1.0-plugins-good", "gst-plugins-good" },
    };

    return rtsp_need_elements(need, PP_ARRAY_LEN(need), err, errlen);
}

static GstRTSPMediaFactory *make_factory(struct rtsp_svc *sv)
{
    PpCamFactory *f = g_object_new(pp_cam_factory_get_type(), NULL);
    GstRTSPMediaFactory *mf = GST_RTSP_MEDIA_FACTORY(f);
    char launch[LAUNCH_MAX + sizeof(sv->location)];

    f->sv = sv;
    snprintf(launch, sizeof(launch),
             "( rtspsrc name=" SRC_NAME " location=\"%s\" protocols=tcp latency=0 "
             "! rtph264depay ! h264parse ! rtph264pay name=" PAY_NAME " pt=96 "
             "config-interval=-1 )", sv->location);
    gst_rtsp_media_factory_set_launch(mf, launch);
    gst_rtsp_media_factory_set_shared(mf, TRUE);
    /* TCP interleaved only: UDP would carry the video unencrypted. */
    gst_rtsp_media_factory_set_protocols(mf, GST_RTSP_LOWER_TRANS_TCP);
    g_signal_connect(mf, "media-configure", G_CALLBACK(on_media_configure), sv);
    return mf;
}

static int rtsp_start(struct service *svc, char *err, size_t errlen)
{
    const struct pp_config *cfg = svc->cfg;
    struct rtsp_svc *sv = &the_svc;
    struct tls_identity id;
    struct rtsp_server_opts o;
    GstRTSPMediaFactory *f;

    if (sv->rs != NULL) {
        snprintf(err, errlen, "the RTSPS service is already running");
        return -1;
    }
    sv->cfg = cfg;
    atomic_store(&sv->no_keepalive, false); /* a new start may face another printer */
    if (make_location(sv, err, errlen) != 0 || rtsp_gst_init(err, errlen) != 0 ||
        need_elements(err, errlen) != 0) {
        return -1;
    }
    identity_paths(cfg, &id); /* load_identity made sure they exist */
    memset(&o, 0, sizeof(o));
    o.name = SVC;
    o.bind_addr = cfg->bind_addr;
    o.port = cfg->ports[PP_SVC_RTSP];
    o.cert_file = id.cert;
    o.key_file = id.key;
    o.user = RTSP_USER;
    o.password = cfg->access_code;
    o.max_clients = cfg->max_clients;
    sv->rs = rtsp_server_new(&o, err, errlen);
    if (sv->rs == NULL) {
        return -1;
    }
    f = make_factory(sv);
    rtsp_server_mount(sv->rs, PRINTER_PATH, f);
    rtsp_server_mount(sv->rs, SEED_PATH, f);
    g_object_unref(f);
    rtsp_server_add_timer(sv->rs, PP_RTSP_WATCHDOG_MS, watchdog, sv);
    if (rtsp_server_start(sv->rs, err, errlen) != 0) {
        rtsp_server_free(sv->rs);
        sv->rs = NULL;
        return -1;
    }
    log_info(SVC, 0, "serving %s and %s from the printer stream %s (opened on demand, "
             "closed %d s after the last viewer leaves)", PRINTER_PATH, SEED_PATH, sv->location,
             cfg->camera_linger_s);
    return 0;
}

static void rtsp_reload(const struct pp_config *cfg)
{
    struct tls_identity id;
    char err[512];

    if (the_svc.rs == NULL) {
        return;
    }
    identity_paths(cfg, &id);
    if (rtsp_server_reload_cert(the_svc.rs, id.cert, id.key, err, sizeof(err)) != 0) {
        log_error(SVC, 0, "%s", err);
    }
}

static void rtsp_stop(struct service *svc)
{
    struct rtsp_server *rs;
    struct cam_media *cm;

    (void)svc;
    pthread_mutex_lock(&the_svc.lock);
    rs = the_svc.rs;
    cm = the_svc.cur ? cm_ref(the_svc.cur) : NULL;
    the_svc.rs = NULL;
    pthread_mutex_unlock(&the_svc.lock);
    if (rs == NULL) {
        cm_unref(cm);
        return;
    }
    if (cm != NULL) {
        /* Queued before the server's own stop: the lingering stream closes cleanly. */
        rtsp_server_invoke(rs, release_now, cm, cm_unref_notify);
    }
    rtsp_server_free(rs);
    pthread_mutex_lock(&the_svc.lock);
    cm = the_svc.cur;
    the_svc.cur = NULL;
    pthread_mutex_unlock(&the_svc.lock);
    cm_unref(cm);
}

static const struct service_ops rtsp_ops = {
    .start = rtsp_start,
    .stop = rtsp_stop,
    .own_listener = true,
};

/* What svc_rtsp.c looks up after dlopen(). */
const struct pp_rtsp_module pp_rtsp_module = {
    .abi = PP_RTSP_MODULE_ABI,
    .version = PACKAGE_VERSION,
    .config_size = sizeof(struct pp_config),
    .service_size = sizeof(struct service),
    .ops = &rtsp_ops,
    .reload = rtsp_reload,
    .shutdown = rtsp_gst_shutdown,
};
