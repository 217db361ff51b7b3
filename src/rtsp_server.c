/* SPDX-License-Identifier: MIT */
/*
 * The gst-rtsp-server runtime (see rtsp_server.h). Threads: one thread of ours runs the
 * server's GMainContext (accepting, timers, invoked work); gst-rtsp-server serves each
 * client in a thread of its own pool and runs each media in a media thread. Everything
 * that touches the server object from outside goes through rtsp_server_invoke.
 */
#include "autoconf.h"

#include "rtsp_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>

#include "limits.h"
#include "log.h"
#include "service.h"
#include "thread.h"
#include "util.h"

#define RTSP_ROLE        "viewer"
#define RTSP_NAME_MAX    32
#define RTSP_USER_MAX    64
#define RTSP_ID_KEY      "pp-conn-id"

/* ---- basic auth with a constant-time check ------------------------------ */

/* GstRTSPAuth's own basic check is a hash lookup of the encoded credentials: not
 * constant time. This subclass decodes them and compares with pp_secret_equal. */
typedef struct {
    GstRTSPAuth parent;
    char name[RTSP_NAME_MAX];
    char user[RTSP_USER_MAX];
    char password[PP_ACCESS_CODE_MAX + 1];
    GstRTSPToken *token;
} PpRtspAuth;

typedef struct {
    GstRTSPAuthClass parent_class;
} PpRtspAuthClass;

GType pp_rtsp_auth_get_type(void);
G_DEFINE_TYPE(PpRtspAuth, pp_rtsp_auth, GST_TYPE_RTSP_AUTH)

static bool basic_matches(PpRtspAuth *a, const char *b64)
{
    char buf[RTSP_USER_MAX + PP_ACCESS_CODE_MAX + 2];
    gsize n = 0;
    guchar *raw;
    char *colon;
    bool ok;

    if (strlen(b64) > PP_RTSP_AUTH_HEADER_MAX) {
        return false;
    }
    raw = g_base64_decode(b64, &n);
    if (raw == NULL || n == 0 || n >= sizeof(buf) || memchr(raw, '\0', n) != NULL) {
        if (raw != NULL) {
            pp_wipe(raw, n);
        }
        g_free(raw);
        return false;
    }
    memcpy(buf, raw, n);
    buf[n] = '\0';
    pp_wipe(raw, n);
    g_free(raw);
    colon = strchr(buf, ':');
    if (colon == NULL) {
        pp_wipe(buf, sizeof(buf));
        return false;
    }
    *colon = '\0';
    /* Both comparisons always run: no early exit on a wrong user. */
    ok = pp_secret_equal(buf, a->user);
    ok = pp_secret_equal(colon + 1, a->password) && ok;
    pp_wipe(buf, sizeof(buf));
    return ok;
}

static unsigned long client_conn_id(GstRTSPClient *client)
{
    return client ? (unsigned long)(uintptr_t)g_object_get_data(G_OBJECT(client), RTSP_ID_KEY)
                  : 0;
}

static gboolean pp_rtsp_auth_authenticate(GstRTSPAuth *auth, GstRTSPContext *ctx)
{
    PpRtspAuth *a = (PpRtspAuth *)auth;
    GstRTSPAuthCredential **creds;
    bool presented = false, ok = false;
    const char *ip = ctx->conn ? gst_rtsp_connection_get_ip(ctx->conn) : NULL;
    int64_t locked = ip ? authfail_lockout_left_ms(ip) : 0;

    /* No default token: without valid credentials there is no role, hence 401. */
    ctx->token = NULL;
    if (locked > 0) {
        /* Repeated failures: refuse outright for a while instead of sleeping in the
         * server's shared client threads. */
        log_warn(a->name, client_conn_id(ctx->client),
                 "refusing %s for %lld ms more after failed logins", ip, (long long)locked);
        return TRUE;
    }
    creds = gst_rtsp_message_parse_auth_credentials(ctx->request, GST_RTSP_HDR_AUTHORIZATION);
    for (GstRTSPAuthCredential **c = creds; c != NULL && *c != NULL && !ok; c++) {
        if ((*c)->scheme == GST_RTSP_AUTH_BASIC && (*c)->authorization != NULL) {
            presented = true;
            ok = basic_matches(a, (*c)->authorization);
        }
    }
    if (creds != NULL) {
        gst_rtsp_auth_credentials_free(creds);
    }
    if (ok) {
        ctx->token = a->token; /* borrowed: the auth object keeps it alive */
        if (ip != NULL) {
            authfail_forget(ip);
        }
    } else if (presented) {
        int64_t delay = ip ? authfail_note(ip) : 0;

        log_warn(a->name, client_conn_id(ctx->client),
                 "wrong user or access code from %s (further logins refused for %lld ms)",
                 ip ? ip : "?", (long long)delay);
    }
    return TRUE;
}

static void pp_rtsp_auth_finalize(GObject *obj)
{
    PpRtspAuth *a = (PpRtspAuth *)obj;

    pp_wipe(a->password, sizeof(a->password));
    if (a->token != NULL) {
        gst_rtsp_token_unref(a->token);
    }
    G_OBJECT_CLASS(pp_rtsp_auth_parent_class)->finalize(obj);
}

static void pp_rtsp_auth_class_init(PpRtspAuthClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = pp_rtsp_auth_finalize;
    GST_RTSP_AUTH_CLASS(klass)->authenticate = pp_rtsp_auth_authenticate;
}

static void pp_rtsp_auth_init(PpRtspAuth *a)
{
    a->token = gst_rtsp_token_new(GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING, RTSP_ROLE,
                                  NULL);
}

/* ---- GStreamer start-up -------------------------------------------------- */

static pthread_mutex_t gst_lock = PTHREAD_MUTEX_INITIALIZER;
static bool gst_ready;
static bool gst_started;  /* gst_init ran (gst_ready may still be false) */
static bool gst_ended;    /* rtsp_gst_shutdown ran: no second start */
static atomic_ulong live_clients; /* client connections of every server, not yet closed */

int rtsp_gst_init(char *err, size_t errlen)
{
    GError *gerr = NULL;
    int rc = 0;

    pthread_mutex_lock(&gst_lock);
    if (gst_ended) {
        snprintf(err, errlen, "GStreamer was already shut down in this process");
        rc = -1;
    } else if (!gst_ready) {
        gst_started = true;
        if (!gst_init_check(NULL, NULL, &gerr)) {
            snprintf(err, errlen, "cannot initialise GStreamer: %s",
                     gerr ? gerr->message : "unknown error");
            g_clear_error(&gerr);
            rc = -1;
        } else if (!g_tls_backend_supports_tls(g_tls_backend_get_default())) {
            snprintf(err, errlen, "GLib has no TLS support: install glib-networking");
            rc = -1;
        } else {
            gst_ready = true;
        }
    }
    pthread_mutex_unlock(&gst_lock);
    return rc;
}

void rtsp_gst_shutdown(void)
{
    unsigned long left = atomic_load(&live_clients);

    if (left > 0) {
        /* Joining their threads could wait for ever (a stalled close): leave them. */
        log_warn("rtsp", 0, "%lu viewer connection%s still closing: GStreamer is left to "
                 "end with the process", left, left == 1 ? "" : "s");
        return;
    }
    pthread_mutex_lock(&gst_lock);
    if (gst_started && !gst_ended) {
        /* GLib and GStreamer keep pool threads for reuse; left running at exit they also
         * keep per-thread memory that a leak checker cannot tell from a leak. */
        gst_rtsp_thread_pool_cleanup();
        gst_deinit();
        /* And GLib's idle pool threads (GIO runs TLS handshakes in them). */
        g_thread_pool_set_max_unused_threads(0);
        g_thread_pool_stop_unused_threads();
        gst_ended = true;
        gst_ready = false;
    }
    pthread_mutex_unlock(&gst_lock);
}

int rtsp_need_elements(const struct rtsp_element_need *need, size_t n, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        GstElementFactory *f = gst_element_factory_find(need[i].element);

        if (f == NULL) {
            snprintf(err, errlen, "GStreamer element %s not found: install %s (Debian) or %s "
                     "(Alpine)", need[i].element, need[i].debian, need[i].alpine);
            return -1;
        }
        gst_object_unref(f);
    }
    return 0;
}

/* ---- the server ---------------------------------------------------------- */

struct rtsp_server {
    atomic_int refs;                 /* owner + one per live client connection */
    char name[RTSP_NAME_MAX];
    char host[PP_HOST_MAX];
    int max_clients;
    atomic_ulong *keepalives;
    atomic_ulong own_current, own_total;
    atomic_ulong *current, *total;
    GstRTSPServer *server;
    PpRtspAuth *auth;
    GMainContext *ctx;
    GMainLoop *loop;
    GMainLoop *default_loop;         /* GLib's global default context, see start */
    GSource *listen_src;
    pthread_t thread, default_thread;
    bool started;
};

static struct rtsp_server *rs_ref(struct rtsp_server *rs)
{
    atomic_fetch_add(&rs->refs, 1);
    return rs;
}

static void rs_unref(struct rtsp_server *rs)
{
    if (atomic_fetch_sub(&rs->refs, 1) == 1) {
        free(rs);
    }
}

static void rs_unref_notify(gpointer data)
{
    rs_unref(data);
}

static void rs_unref_closure(gpointer data, GClosure *closure)
{
    (void)closure;
    rs_unref(data);
}

static GstRTSPStatusCode refuse_request(GstRTSPClient *client, GstRTSPContext *ctx,
                                        gpointer data)
{
    (void)client;
    (void)ctx;
    (void)data;
    return GST_RTSP_STS_SERVICE_UNAVAILABLE;
}

static void on_client_closed(GstRTSPClient *client, gpointer data)
{
    struct rtsp_server *rs = data;

    atomic_fetch_sub(rs->current, 1);
    atomic_fetch_sub(&live_clients, 1);
    log_info(rs->name, client_conn_id(client), "viewer connection closed");
}

/* Whether every set-up stream has its segment where gst-rtsp-server 1.22 reads the rate
 * for the PLAY reply (gst_rtsp_stream_get_rates: the sticky SEGMENT event on rtpbin's
 * send_rtp_sink pad, which is the peer of the stream's srcpad). With none,
 * gst_rtsp_media_get_rates g_assert()s and the process aborts. */
static bool media_has_segments(GstRTSPMedia *media)
{
    guint n = gst_rtsp_media_n_streams(media);
    bool ok = true;

    for (guint i = 0; i < n && ok; i++) {
        GstRTSPStream *st = gst_rtsp_media_get_stream(media, i);
        GstPad *src, *peer;
        GstEvent *seg = NULL;

        if (st == NULL || !gst_rtsp_stream_is_complete(st) || !gst_rtsp_stream_is_sender(st)) {
            continue;
        }
        src = gst_rtsp_stream_get_srcpad(st);
        peer = src ? gst_pad_get_peer(src) : NULL;
        if (peer != NULL) {
            seg = gst_pad_get_sticky_event(peer, GST_EVENT_SEGMENT, 0);
            gst_object_unref(peer);
        }
        ok = seg != NULL;
        if (seg != NULL) {
            gst_event_unref(seg);
        }
        if (src != NULL) {
            gst_object_unref(src);
        }
    }
    return ok;
}

/* A client thread, before PLAY is handled (the media is locked from here to the reply).
 *
 * Every media we serve is one live camera shared by all viewers, yet a PLAY with a Range
 * (ffmpeg, VLC and most players send "npt=0.000-"), Scale or Speed header makes
 * gst-rtsp-server 1.22 do a flushing seek of the shared pipeline (setup_play_mode), which
 * interrupts every other viewer and wipes the SEGMENT that the same PLAY then reads for
 * its reply: the seek counts as done at ASYNC_DONE, before the new segment is through,
 * and the process aborts in gst_rtsp_media_get_rates (seen with two viewers joining at
 * once). So those headers are dropped: PLAY joins the camera where it is. The wait for
 * the segments (else 503) only guards streams already set up whose segment went missing
 * some other way; what happens later inside this PLAY is out of its reach. */
static GstRTSPStatusCode on_pre_play(GstRTSPClient *client, GstRTSPContext *ctx,
                                     gpointer data)
{
    struct rtsp_server *rs = data;
    int64_t start = pp_now_ms();

    if (ctx->request != NULL) {
        gst_rtsp_message_remove_header(ctx->request, GST_RTSP_HDR_RANGE, -1);
        gst_rtsp_message_remove_header(ctx->request, GST_RTSP_HDR_SCALE, -1);
        gst_rtsp_message_remove_header(ctx->request, GST_RTSP_HDR_SPEED, -1);
    }
    if (ctx->media == NULL || media_has_segments(ctx->media)) {
        return GST_RTSP_STS_OK;
    }
    do {
        if (pp_now_ms() - start >= PP_RTSP_SEGMENT_WAIT_MS) {
            log_warn(rs->name, client_conn_id(client), "refusing PLAY: the stream has not "
                     "started within %d ms", PP_RTSP_SEGMENT_WAIT_MS);
            return GST_RTSP_STS_SERVICE_UNAVAILABLE;
        }
        pp_sleep(PP_RTSP_SEGMENT_POLL_MS, -1);
    } while (!media_has_segments(ctx->media));
    log_info(rs->name, client_conn_id(client), "PLAY waited %lld ms for the stream to start",
             (long long)(pp_now_ms() - start));
    return GST_RTSP_STS_OK;
}

/* A client thread, after a GET_PARAMETER or OPTIONS: with a Session header, a keepalive
 * (ctx->session is not set for these requests in gst-rtsp-server 1.22). */
static void on_keepalive(GstRTSPClient *client, GstRTSPContext *ctx, gpointer data)
{
    struct rtsp_server *rs = data;
    gchar *session = NULL;

    (void)client;
    if (ctx->request != NULL &&
        gst_rtsp_message_get_header(ctx->request, GST_RTSP_HDR_SESSION, &session, 0) ==
            GST_RTSP_OK) {
        atomic_fetch_add(rs->keepalives, 1);
    }
}

/* Runs in the server thread, before the client is attached to its own thread. */
static void on_client_connected(GstRTSPServer *server, GstRTSPClient *client, gpointer data)
{
    /* Not pre-options-request: its error path in GStreamer 1.22 frees a stack message. */
    static const char *const requests[] = { "pre-describe-request", "pre-setup-request",
                                            "pre-play-request" };
    struct rtsp_server *rs = data;
    GstRTSPConnection *conn = gst_rtsp_client_get_connection(client);
    unsigned long id = service_next_id();
    unsigned long cur = atomic_fetch_add(rs->current, 1) + 1;

    (void)server;
    atomic_fetch_add(rs->total, 1);
    atomic_fetch_add(&live_clients, 1);
    g_object_set_data(G_OBJECT(client), RTSP_ID_KEY, (gpointer)(uintptr_t)id);
    g_signal_connect_data(client, "closed", G_CALLBACK(on_client_closed), rs_ref(rs),
                          rs_unref_closure, 0);
    if (rs->max_clients > 0 && cur > (unsigned long)rs->max_clients) {
        /* Over the cap: every request gets 503 until the client goes away. */
        log_warn(rs->name, id, "refusing %s: %d viewer connections already",
                 conn ? gst_rtsp_connection_get_ip(conn) : "?", rs->max_clients);
        for (size_t i = 0; i < PP_ARRAY_LEN(requests); i++) {
            g_signal_connect(client, requests[i], G_CALLBACK(refuse_request), NULL);
        }
        return;
    }
    g_signal_connect_data(client, "pre-play-request", G_CALLBACK(on_pre_play),
                          rs_ref(rs), rs_unref_closure, 0);
    if (rs->keepalives != NULL) {
        g_signal_connect_data(client, "get-parameter-request", G_CALLBACK(on_keepalive),
                              rs_ref(rs), rs_unref_closure, 0);
        g_signal_connect_data(client, "options-request", G_CALLBACK(on_keepalive),
                              rs_ref(rs), rs_unref_closure, 0);
    }
    log_info(rs->name, id, "viewer connection from %s",
             conn ? gst_rtsp_connection_get_ip(conn) : "?");
}

static gboolean session_cleanup(gpointer data)
{
    struct rtsp_server *rs = data;
    GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool(rs->server);

    /* Sessions of viewers that vanished stay until their timeout without this. */
    gst_rtsp_session_pool_cleanup(pool);
    g_object_unref(pool);
    return G_SOURCE_CONTINUE;
}

static int make_auth(struct rtsp_server *rs, const struct rtsp_server_opts *o, char *err,
                     size_t errlen)
{
    GError *gerr = NULL;
    GTlsCertificate *cert;

    if (strlen(o->user) >= sizeof(rs->auth->user) ||
        strlen(o->password) >= sizeof(rs->auth->password)) {
        snprintf(err, errlen, "user or access code too long for RTSPS");
        return -1;
    }
    cert = g_tls_certificate_new_from_files(o->cert_file, o->key_file, &gerr);
    if (cert == NULL) {
        snprintf(err, errlen, "cannot load the certificate %s / key %s for RTSPS: %s",
                 o->cert_file, o->key_file, gerr ? gerr->message : "unknown error");
        g_clear_error(&gerr);
        return -1;
    }
    rs->auth = g_object_new(pp_rtsp_auth_get_type(), NULL);
    snprintf(rs->auth->name, sizeof(rs->auth->name), "%s", rs->name);
    snprintf(rs->auth->user, sizeof(rs->auth->user), "%s", o->user);
    snprintf(rs->auth->password, sizeof(rs->auth->password), "%s", o->password);
    gst_rtsp_auth_set_tls_certificate(GST_RTSP_AUTH(rs->auth), cert);
    g_object_unref(cert);
    gst_rtsp_auth_set_supported_methods(GST_RTSP_AUTH(rs->auth), GST_RTSP_AUTH_BASIC);
    gst_rtsp_server_set_auth(rs->server, GST_RTSP_AUTH(rs->auth));
    return 0;
}

struct rtsp_server *rtsp_server_new(const struct rtsp_server_opts *o, char *err, size_t errlen)
{
    struct rtsp_server *rs = calloc(1, sizeof(*rs));
    GstRTSPThreadPool *pool;
    char port[16];

    if (rs == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&rs->refs, 1);
    snprintf(rs->name, sizeof(rs->name), "%s", o->name);
    snprintf(rs->host, sizeof(rs->host), "%s", o->bind_addr);
    rs->max_clients = o->max_clients;
    rs->keepalives = o->keepalives;
    rs->current = o->current ? o->current : &rs->own_current;
    rs->total = o->total ? o->total : &rs->own_total;
    rs->ctx = g_main_context_new();
    rs->loop = g_main_loop_new(rs->ctx, FALSE);
    rs->default_loop = g_main_loop_new(NULL, FALSE);
    rs->server = gst_rtsp_server_new();
    gst_rtsp_server_set_address(rs->server, o->bind_addr);
    snprintf(port, sizeof(port), "%d", o->port);
    gst_rtsp_server_set_service(rs->server, port);
    gst_rtsp_server_set_backlog(rs->server, PP_RTSP_BACKLOG);
    /* The default pool has one thread: one viewer waiting on a slow printer would
     * hold up every other viewer. */
    pool = gst_rtsp_server_get_thread_pool(rs->server);
    gst_rtsp_thread_pool_set_max_threads(pool, PP_RTSP_CLIENT_THREADS);
    g_object_unref(pool);
    if (make_auth(rs, o, err, errlen) != 0) {
        rtsp_server_free(rs);
        return NULL;
    }
    g_signal_connect(rs->server, "client-connected", G_CALLBACK(on_client_connected), rs);
    rtsp_server_add_timer(rs, PP_RTSP_SESSION_CLEANUP_MS, session_cleanup, rs);
    return rs;
}

void rtsp_server_mount(struct rtsp_server *rs, const char *path, GstRTSPMediaFactory *f)
{
    GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points(rs->server);

    /* The viewer role may see the factory and build its media; nobody else may. */
    gst_rtsp_media_factory_add_role(f, RTSP_ROLE, GST_RTSP_PERM_MEDIA_FACTORY_ACCESS,
                                    G_TYPE_BOOLEAN, TRUE, GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
                                    G_TYPE_BOOLEAN, TRUE, NULL);
    gst_rtsp_mount_points_add_factory(mounts, path, g_object_ref(f));
    g_object_unref(mounts);
}

static void *loop_main(void *arg)
{
    struct rtsp_server *rs = arg;

    g_main_context_push_thread_default(rs->ctx);
    g_main_loop_run(rs->loop);
    g_main_context_pop_thread_default(rs->ctx);
    return NULL;
}

static void *default_main(void *arg)
{
    struct rtsp_server *rs = arg;

    g_main_loop_run(rs->default_loop);
    return NULL;
}

int rtsp_server_start(struct rtsp_server *rs, char *err, size_t errlen)
{
    GError *gerr = NULL;
    int port, e;

    rs->listen_src = gst_rtsp_server_create_source(rs->server, NULL, &gerr);
    if (rs->listen_src == NULL) {
        snprintf(err, errlen, "cannot listen on %s: %s", rs->host,
                 gerr ? gerr->message : "unknown error");
        g_clear_error(&gerr);
        return -1;
    }
    g_source_attach(rs->listen_src, rs->ctx);
    port = gst_rtsp_server_get_bound_port(rs->server);
    /* gst-rtsp-server's client threads push no thread-default context, so GIO completes
     * their TLS work (GTask) on GLib's global default context; if nobody iterates it,
     * every closed TLS connection keeps its socket (CLOSE_WAIT) forever. */
    e = thread_spawn(&rs->default_thread, false, default_main, rs);
    if (e == 0) {
        e = thread_spawn(&rs->thread, false, loop_main, rs);
        if (e != 0) {
            g_main_loop_quit(rs->default_loop);
            pthread_join(rs->default_thread, NULL);
        }
    }
    if (e != 0) {
        snprintf(err, errlen, "cannot start the RTSPS thread: %s", strerror(e));
        g_source_destroy(rs->listen_src);
        return -1;
    }
    rs->started = true;
    log_info(rs->name, 0, strchr(rs->host, ':') ? "listening on [%s]:%d (%s)"
                                                : "listening on %s:%d (%s)",
             rs->host, port, rs->name);
    return 0;
}

void rtsp_server_invoke(struct rtsp_server *rs, GSourceFunc fn, gpointer data,
                        GDestroyNotify notify)
{
    /* Always queued, never run in place (g_main_context_invoke would when called from
     * the server thread): callers may hold locks the work needs. */
    GSource *idle = g_idle_source_new();

    g_source_set_priority(idle, G_PRIORITY_DEFAULT);
    g_source_set_callback(idle, fn, data, notify);
    g_source_attach(idle, rs->ctx);
    g_source_unref(idle);
}

void rtsp_server_add_timer(struct rtsp_server *rs, unsigned period_ms, GSourceFunc fn,
                           gpointer data)
{
    GSource *t = g_timeout_source_new(period_ms);

    g_source_set_callback(t, fn, data, NULL);
    g_source_attach(t, rs->ctx);
    g_source_unref(t);
}

GstRTSPServer *rtsp_server_gst(struct rtsp_server *rs)
{
    return rs->server;
}

static GstRTSPFilterResult remove_client(GstRTSPServer *server, GstRTSPClient *client,
                                         gpointer data)
{
    (void)server;
    (void)client;
    (void)data;
    return GST_RTSP_FILTER_REMOVE;
}

static gboolean drop_all_now(gpointer data)
{
    struct rtsp_server *rs = data;

    g_list_free(gst_rtsp_server_client_filter(rs->server, remove_client, NULL));
    return G_SOURCE_REMOVE;
}

void rtsp_server_drop_all(struct rtsp_server *rs)
{
    if (rs != NULL && rs->started) {
        rtsp_server_invoke(rs, drop_all_now, rs_ref(rs), rs_unref_notify);
    }
}

struct cert_reload {
    struct rtsp_server *rs;
    GTlsCertificate *cert;
};

static gboolean reload_now(gpointer data)
{
    struct cert_reload *r = data;

    /* The accept path reads the certificate in this thread: swap it here. */
    gst_rtsp_auth_set_tls_certificate(GST_RTSP_AUTH(r->rs->auth), r->cert);
    return G_SOURCE_REMOVE;
}

static void reload_free(gpointer data)
{
    struct cert_reload *r = data;

    g_object_unref(r->cert);
    rs_unref(r->rs);
    free(r);
}

int rtsp_server_reload_cert(struct rtsp_server *rs, const char *cert_file, const char *key_file,
                            char *err, size_t errlen)
{
    GError *gerr = NULL;
    struct cert_reload *r;
    GTlsCertificate *cert = g_tls_certificate_new_from_files(cert_file, key_file, &gerr);

    if (cert == NULL) {
        snprintf(err, errlen, "cannot load %s: %s", cert_file, gerr ? gerr->message : "?");
        g_clear_error(&gerr);
        return -1;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        g_object_unref(cert);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->rs = rs_ref(rs);
    r->cert = cert;
    rtsp_server_invoke(rs, reload_now, r, reload_free);
    return 0;
}

static gboolean stop_now(gpointer data)
{
    struct rtsp_server *rs = data;

    g_source_destroy(rs->listen_src);
    drop_all_now(rs);
    g_main_loop_quit(rs->loop);
    return G_SOURCE_REMOVE;
}

void rtsp_server_free(struct rtsp_server *rs)
{
    int64_t deadline = pp_now_ms() + PP_RTSP_STOP_WAIT_MS;

    if (rs == NULL) {
        return;
    }
    if (rs->started) {
        rtsp_server_invoke(rs, stop_now, rs, NULL);
        pthread_join(rs->thread, NULL);
        rs->started = false;
        /* Client threads finish closing on their own; give them a moment. */
        while (atomic_load(rs->current) > 0 && pp_now_ms() < deadline) {
            pp_sleep(PP_RTSP_STOP_POLL_MS, -1);
        }
        g_main_loop_quit(rs->default_loop);
        pthread_join(rs->default_thread, NULL);
    }
    if (rs->listen_src != NULL) {
        g_source_destroy(rs->listen_src);
        g_source_unref(rs->listen_src);
    }
    if (rs->server != NULL) {
        g_signal_handlers_disconnect_by_data(rs->server, rs);
        g_object_unref(rs->server);
    }
    if (rs->auth != NULL) {
        g_object_unref(rs->auth);
    }
    g_main_loop_unref(rs->loop);
    g_main_loop_unref(rs->default_loop);
    g_main_context_unref(rs->ctx);
    rs_unref(rs);
}
