/* SPDX-License-Identifier: MIT */
/*
 * Every bound PandaProxy enforces, in one place. Sizes are in bytes and times in
 * milliseconds unless the name says otherwise.
 */
#ifndef PP_LIMITS_H
#define PP_LIMITS_H

/* ---- runtime ---------------------------------------------------------- */
#define PP_DEFAULT_MAX_CLIENTS      32
#define PP_MAX_CLIENTS_CEILING      4096
#define PP_THREAD_STACK_SIZE        (256 * 1024)
#define PP_HANDSHAKE_TIMEOUT_MS     10000   /* TLS handshake of a client */
#define PP_AUTH_TIMEOUT_MS          10000   /* from accept to valid credentials */
#define PP_SEND_TIMEOUT_MS          10000   /* a client that stops reading */
#define PP_CONNECT_TIMEOUT_MS       5000    /* TCP connect to the printer */
#define PP_ACCEPT_BACKOFF_MS        100     /* after EMFILE/ENFILE */
#define PP_SHUTDOWN_TARGET_MS       1000
#define PP_IO_CHUNK                 16384

/* ---- upstream reconnect (exponential with jitter) --------------------- */
#define PP_BACKOFF_INITIAL_MS       1000
#define PP_BACKOFF_MAX_MS           30000
#define PP_BACKOFF_AUTH_FAIL_MS     30000   /* printer rejected the access code */

/* ---- failed-login throttling (per client address) --------------------- */
#define PP_AUTHFAIL_SLOTS           64
#define PP_AUTHFAIL_STEP_MS         250     /* delay grows by this per failure */
#define PP_AUTHFAIL_MAX_DELAY_MS    5000
#define PP_AUTHFAIL_FORGET_MS       600000  /* forget an address after 10 min */

/* ---- configuration ---------------------------------------------------- */
#define PP_ACCESS_CODE_MAX          64
#define PP_SERIAL_MAX               64
#define PP_HOST_MAX                 256
#define PP_PATH_MAX                 4096
#define PP_DEFAULT_CAMERA_LINGER_S  60
#define PP_DEFAULT_CAMERA_REDETECT_S 300    /* --camera-redetect */
#define PP_CAMERA_REDETECT_MAX_S    86400
#define PP_DEFAULT_FTP_DATA_LO      50000
#define PP_DEFAULT_FTP_DATA_HI      50100
#define PP_DEFAULT_FTP_SESSIONS     2

/* ---- TLS identity ----------------------------------------------------- */
#define PP_CA_VALID_DAYS            3650
#define PP_CERT_VALID_DAYS          825
#define PP_CERT_RENEW_DAYS          30      /* renew when fewer days remain */

/* ---- chamber camera --------------------------------------------------- */
#define PP_CHAMBER_AUTH_LEN         80
#define PP_CHAMBER_HEADER_LEN       16
#define PP_CHAMBER_MAX_FRAME        (4 * 1024 * 1024)
#define PP_CHAMBER_FRESH_MS         2000
#define PP_CHAMBER_STALL_MS         10000
#define PP_DETECT_TIMEOUT_MS        5000
#define PP_DETECT_RETRY_MS          30000
#define PP_CHAMBER_DRAIN_MS         500     /* read after close_notify until the printer's */
#define PP_DETECT_CHECK_MS          10000   /* how often a detected camera's health is checked */
#define PP_DETECT_FAILING_RECENT_MS 60000   /* failing --camera-redetect s, and this recently:
                                               probe the ports again */

/* ---- MQTT ------------------------------------------------------------- */
#define PP_MQTT_MAX_PACKET          (2 * 1024 * 1024)
#define PP_MQTT_MAX_TOPIC           1024
#define PP_MQTT_MAX_CLIENT_ID       256
#define PP_MQTT_MAX_SUBS            64      /* filters per client */
#define PP_MQTT_QUEUE_MSGS          256     /* per-client outgoing queue */
#define PP_MQTT_QUEUE_BYTES         (8 * 1024 * 1024)
#define PP_MQTT_PENDING_REQUESTS    64      /* requests held while printer is away */
#define PP_MQTT_PENDING_MS          10000
#define PP_MQTT_UPSTREAM_KEEPALIVE_S 60
#define PP_MQTT_CONNECT_TIMEOUT_MS  10000   /* accept to CONNECT, and printer CONNACK */
#define PP_MQTT_UPSTREAM_INFLIGHT   32      /* requests sent, printer PUBACK awaited */
#define PP_MQTT_CLIENT_ACKS         (PP_MQTT_PENDING_REQUESTS + PP_MQTT_UPSTREAM_INFLIGHT)
#define PP_MQTT_READ_INITIAL        4096    /* a reader's buffer grows from this */
#define PP_MQTT_CLIENT_READ_CHUNK   2048    /* clients send small packets */
#define PP_MQTT_TAKE_BATCH          32      /* reports a worker takes per wake */

/* ---- FTP -------------------------------------------------------------- */
#define PP_FTP_MAX_LINE             1024    /* command or reply line, CRLF included */
#define PP_FTP_MAX_REPLY_LINES      256     /* lines in one multi-line reply */
#define PP_FTP_SLOT_WAIT_MS         60000
#define PP_FTP_SLOT_GRACE_MS        100     /* between a printer session's end and the next */
#define PP_FTP_IDLE_MS              600000  /* control idle with no transfer */
#define PP_FTP_DATA_ACCEPT_MS       30000
#define PP_FTP_DATA_BACKLOG         4
#define PP_FTP_DATA_STALL_MS        300000  /* no byte moved during a transfer */
#define PP_FTP_REPLY_MS             120000  /* printer's answer to a command */
#define PP_FTP_ABOR_REPLY_MS        10000   /* each reply that follows an ABOR */
#define PP_FTP_QUIT_MS              2000    /* printer's 221 when we leave */
#define PP_FTP_LOGIN_TRIES          3       /* wrong passwords before we hang up */
#define PP_FTP_LOGIN_ATTEMPTS       5       /* printer sessions tried before 421 */
#define PP_FTP_LOGIN_RETRY_MS       200     /* times the attempt number */
#define PP_FTP_REPLY_CAPTURE        4096    /* a reply held back until data is closed */
#define PP_FTP_DATA_CHUNK           (64 * 1024) /* data moved per wake-up */
#define PP_FTP_PRINTER_SNDBUF       (256 * 1024) /* upload bytes queued towards the printer */

/* ---- simulator FTPS server -------------------------------------------- */
#define PP_SIM_FTP_VPATH_MAX        2048    /* virtual path (cwd + argument) */
#define PP_SIM_FTP_CTL_BUF          4096    /* control bytes read ahead (>= one line) */
#define PP_SIM_FTP_REPLY_MAX        (PP_SIM_FTP_VPATH_MAX + 256)
#define PP_SIM_FTP_IO_CHUNK         65536   /* file <-> data connection */
#define PP_SIM_FTP_LIST_BUF         16384   /* listing lines batched per write */
#define PP_SIM_FTP_DATA_IDLE_MS     300000  /* data connection without progress */
#define PP_SIM_FTP_LINGER_MS        2000    /* wait for the client's close after a download */
#define PP_SIM_FTP_MAX_BAD_LOGINS   3       /* then the session is closed */
#define PP_SIM_FTP_SESSION_CACHE    1024    /* TLS sessions kept for data-connection reuse */
#define PP_SIM_FTP_SESSION_LIFE_S   86400   /* a long upload must not outlive its session */

/* ---- RTSPS camera ------------------------------------------------------ */
#define PP_RTSP_CLIENT_THREADS      8       /* gst-rtsp-server client threads (default 1) */
#define PP_RTSP_BACKLOG             64      /* listen backlog */
#define PP_RTSP_SESSION_CLEANUP_MS  2000    /* sweep sessions of vanished viewers */
#define PP_RTSP_AUTH_HEADER_MAX     256     /* base64 credentials we decode at most */
#define PP_RTSP_STOP_WAIT_MS        2000    /* wait for client threads at stop */
#define PP_RTSP_STOP_POLL_MS        10
#define PP_RTSP_DATA_TIMEOUT_MS     3000    /* no H.264 from the printer this long = loss */
#define PP_RTSP_WATCHDOG_MS         1000    /* how often the data watchdog looks */
#define PP_RTSP_KEEPALIVE_MS        10000   /* RTSP keepalive to the printer (GET_PARAMETER);
                                               session timeouts are 60 s by default */
#define PP_RTSP_STALE_MS            1000    /* stopped with no video this long: viewers hang */
#define PP_RTSP_UPSTREAM_TIMEOUT_US 10000000 /* rtspsrc: printer RTSP reply timeout */
#define PP_RTSP_SEGMENT_WAIT_MS     3000    /* PLAY waits this long for the stream's start */
#define PP_RTSP_SEGMENT_POLL_MS     10

#endif
