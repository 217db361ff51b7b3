/* SPDX-License-Identifier: MIT */
/*
 * Generates and maintains the proxy's certificates. Keys are ECDSA P-256 (fast to
 * make, accepted by every client we serve). Files are written atomically; the CA is
 * claimed with an exclusive link so two daemons starting at once agree on one CA.
 */
#include "autoconf.h"

#include "identity.h"

#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls.h"
#include "util.h"

#define CA_FILE       "pandaproxy-ca.crt"
#define CA_KEY_FILE   "pandaproxy-ca.key"
#define SAN_MAX       4096
#define PEM_MAX       (64 * 1024)
#define CA_WAIT_MS    5000
#define SECS_PER_DAY  86400L

void identity_paths(const struct pp_config *cfg, struct tls_identity *id)
{
    memset(id, 0, sizeof(*id));
    snprintf(id->ca_cert, sizeof(id->ca_cert), "%s/%s", cfg->state_dir, CA_FILE);
    snprintf(id->ca_key, sizeof(id->ca_key), "%s/%s", cfg->state_dir, CA_KEY_FILE);
    if (cfg->cert_file[0]) {
        snprintf(id->cert, sizeof(id->cert), "%s", cfg->cert_file);
        snprintf(id->key, sizeof(id->key), "%s", cfg->key_file);
        id->custom = true;
    } else {
        snprintf(id->cert, sizeof(id->cert), "%s/%s.crt", cfg->state_dir, cfg->serial);
        snprintf(id->key, sizeof(id->key), "%s/%s.key", cfg->state_dir, cfg->serial);
    }
}

static void ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[200] = "";

    if (e) {
        ERR_error_string_n(e, buf, sizeof(buf));
    }
    snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", buf);
    ERR_clear_error();
}

static X509 *load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x;

    if (f == NULL) {
        return NULL;
    }
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static EVP_PKEY *load_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k;

    if (f == NULL) {
        return NULL;
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ex;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ex == NULL) {
        return -1;
    }
    ok = X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

static int set_serial_random(X509 *x)
{
    unsigned char raw[16];
    BIGNUM *bn;
    int ok;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return -1;
    }
    raw[0] &= 0x7f; /* positive */
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

/* A certificate skeleton: subject CN, validity, public key. */
static X509 *new_cert(const char *cn, EVP_PKEY *key, long days)
{
    X509 *x = X509_new();
    X509_NAME *name;

    if (x == NULL || X509_set_version(x, 2) != 1 || set_serial_random(x) != 0) {
        goto fail;
    }
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), days * SECS_PER_DAY);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"PandaProxy", -1,
                               -1, 0);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_pubkey(x, key) != 1) {
        goto fail;
    }
    return x;
fail:
    X509_free(x);
    return NULL;
}

static int write_pem(const char *path, X509 *cert, X509 *chain, EVP_PKEY *key, bool exclusive)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long len;
    int rc = -1;

    if (b == NULL) {
        return -1;
    }
    if (cert && PEM_write_bio_X509(b, cert) != 1) {
        goto out;
    }
    if (chain && PEM_write_bio_X509(b, chain) != 1) {
        goto out;
    }
    if (key && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1) {
        goto out;
    }
    len = BIO_get_mem_data(b, &data);
    rc = pp_write_file_atomic(path, data, (size_t)len, key ? 0600 : 0644, exclusive);
out:
    BIO_free(b);
    return rc;
}

static bool expires_soon(X509 *x)
{
    time_t limit = time(NULL) + PP_CERT_RENEW_DAYS * SECS_PER_DAY;

    return X509_cmp_time(X509_get0_notAfter(x), &limit) < 0;
}

static int generate_ca(const struct tls_identity *id, char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = NULL;
    int rc = -1;

    if (key == NULL || (x = new_cert("PandaProxy local CA", key, PP_CA_VALID_DAYS)) == NULL ||
        X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        add_ext(x, x, NID_subject_key_identifier, "hash") != 0 ||
        X509_sign(x, key, EVP_sha256()) == 0) {
        ssl_err(err, errlen, "cannot create the CA certificate");
        goto out;
    }
    /* The key file is the claim: whoever links it first owns the CA. */
    if (write_pem(id->ca_key, NULL, NULL, key, true) != 0) {
        if (errno == EEXIST) {
            rc = 1;
        } else {
            snprintf(err, errlen, "cannot write %s: %s", id->ca_key, strerror(errno));
        }
        goto out;
    }
    if (write_pem(id->ca_cert, x, NULL, NULL, false) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", id->ca_cert, strerror(errno));
        goto out;
    }
    log_info(NULL, 0, "generated a new local CA: %s", id->ca_cert);
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* The CA's key and certificate, generating or renewing them when needed. */
static int load_or_make_ca(const struct tls_identity *id, X509 **ca, EVP_PKEY **cakey,
                           char *err, size_t errlen)
{
    int64_t until = pp_now_ms() + CA_WAIT_MS;

    for (;;) {
        bool key_exists, cert_exists;
        int r;

        *ca = load_cert(id->ca_cert);
        *cakey = load_key(id->ca_key);
        ERR_clear_error();
        if (*ca && *cakey && X509_check_private_key(*ca, *cakey) == 1) {
            if (!expires_soon(*ca)) {
                ERR_clear_error();
                return 0;
            }
            log_info(NULL, 0, "the local CA expires soon: making a new one (clients must "
                     "trust the new %s)", id->ca_cert);
            unlink(id->ca_key);
        }
        X509_free(*ca);
        EVP_PKEY_free(*cakey);
        *ca = NULL;
        *cakey = NULL;
        ERR_clear_error();
        key_exists = access(id->ca_key, F_OK) == 0;
        cert_exists = access(id->ca_cert, F_OK) == 0;
        if (key_exists) {
            /* Claimed by another process that is still writing, or broken. */
            if (pp_now_ms() < until) {
                pp_sleep(50, -1);
                continue;
            }
            snprintf(err, errlen, "%s%s%s cannot be used (unreadable or not a pair): "
                     "remove them to make a new CA", id->ca_key, cert_exists ? " and " : "",
                     cert_exists ? id->ca_cert : "");
            return -1;
        }
        r = generate_ca(id, err, errlen);
        if (r < 0) {
            return -1;
        }
    }
}

static void san_add(char *san, size_t cap, const char *kind, const char *val)
{
    char item[300];

    snprintf(item, sizeof(item), "%s:%s", kind, val);
    if (strstr(san, item) != NULL) {
        return;
    }
    if (san[0] && strlen(san) + 1 < cap) {
        strcat(san, ",");
    }
    if (strlen(san) + strlen(item) < cap) {
        strcat(san, item);
    }
}

static void san_add_interfaces(char *san, size_t cap, int family_want)
{
    struct ifaddrs *ifa = NULL;

    if (getifaddrs(&ifa) != 0) {
        return;
    }
    for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next) {
        char host[NI_MAXHOST];
        int fam;

        if (i->ifa_addr == NULL) {
            continue;
        }
        fam = i->ifa_addr->sa_family;
        if ((fam != AF_INET && fam != AF_INET6) || (family_want == AF_INET && fam != AF_INET)) {
            continue;
        }
        if (getnameinfo(i->ifa_addr, fam == AF_INET ? sizeof(struct sockaddr_in)
                                                   : sizeof(struct sockaddr_in6),
                        host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0) {
            continue;
        }
        if (strchr(host, '%') != NULL) {
            continue; /* link-local with scope: not expressible in a SAN */
        }
        san_add(san, cap, "IP", host);
    }
    freeifaddrs(ifa);
}

/* DNS: serial, host name, localhost; IP: the bind address or every interface address. */
static void build_san(const struct pp_config *cfg, char *san, size_t cap)
{
    char host[256];

    san[0] = '\0';
    san_add(san, cap, "DNS", cfg->serial);
    if (gethostname(host, sizeof(host)) == 0 && host[0]) {
        host[sizeof(host) - 1] = '\0';
        san_add(san, cap, "DNS", host);
    }
    san_add(san, cap, "DNS", "localhost");
    san_add(san, cap, "IP", "127.0.0.1");
    san_add(san, cap, "IP", "::1");
    if (strcmp(cfg->bind_addr, "0.0.0.0") == 0) {
        san_add_interfaces(san, cap, AF_INET);
    } else if (strcmp(cfg->bind_addr, "::") == 0) {
        san_add_interfaces(san, cap, AF_UNSPEC);
    } else {
        san_add(san, cap, "IP", cfg->bind_addr);
    }
}

/* Whether cert already covers every name and address in san. */
static bool san_covered(X509 *x, const char *san)
{
    char tmp[SAN_MAX];
    char *save = NULL;

    snprintf(tmp, sizeof(tmp), "%s", san);
    for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strncmp(tok, "DNS:", 4) == 0) {
            if (X509_check_host(x, tok + 4, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) != 1) {
                return false;
            }
        } else if (strncmp(tok, "IP:", 3) == 0) {
            if (X509_check_ip_asc(x, tok + 3, 0) != 1) {
                return false;
            }
        }
    }
    return true;
}

static int generate_server(const struct pp_config *cfg, const struct tls_identity *id, X509 *ca,
                           EVP_PKEY *cakey, const char *san, char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = NULL;
    int rc = -1;

    if (key == NULL || (x = new_cert(cfg->serial, key, PP_CERT_VALID_DAYS)) == NULL ||
        X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
        add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        add_ext(x, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") != 0 ||
        add_ext(x, ca, NID_ext_key_usage, "serverAuth") != 0 ||
        add_ext(x, ca, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, ca, NID_authority_key_identifier, "keyid:always") != 0 ||
        add_ext(x, ca, NID_subject_alt_name, san) != 0 || X509_sign(x, cakey, EVP_sha256()) == 0) {
        ssl_err(err, errlen, "cannot create the server certificate");
        goto out;
    }
    if (write_pem(id->key, NULL, NULL, key, false) != 0 ||
        write_pem(id->cert, x, ca, NULL, false) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", id->cert, strerror(errno));
        goto out;
    }
    log_info(NULL, 0, "generated the server certificate %s (CN=%s, valid %d days)", id->cert,
             cfg->serial, PP_CERT_VALID_DAYS);
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* Why the existing server certificate must be replaced, or NULL when it is fine. */
static const char *server_stale(const struct tls_identity *id, X509 *ca, const char *san)
{
    X509 *x = load_cert(id->cert);
    EVP_PKEY *k = load_key(id->key);
    EVP_PKEY *capub = X509_get0_pubkey(ca);
    const char *why = NULL;

    if (x == NULL || k == NULL) {
        why = "missing";
    } else if (X509_check_private_key(x, k) != 1) {
        why = "key does not match";
    } else if (X509_verify(x, capub) != 1) {
        why = "not signed by the current CA";
    } else if (expires_soon(x)) {
        why = "expires soon";
    } else if (!san_covered(x, san)) {
        why = "names or addresses changed";
    }
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return why;
}

static int ensure_dir(const char *dir, char *err, size_t errlen)
{
    if (pp_mkdir_p(dir, 0700) != 0) {
        snprintf(err, errlen, "cannot create state directory %s: %s (set --state-dir)", dir,
                 strerror(errno));
        return -1;
    }
    if (access(dir, W_OK) != 0) {
        snprintf(err, errlen, "state directory %s is not writable: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int identity_ensure_ca(const struct pp_config *cfg, struct tls_identity *id, char *err,
                       size_t errlen)
{
    X509 *ca = NULL;
    EVP_PKEY *cakey = NULL;

    identity_paths(cfg, id);
    if (ensure_dir(cfg->state_dir, err, errlen) != 0 ||
        load_or_make_ca(id, &ca, &cakey, err, errlen) != 0) {
        return -1;
    }
    X509_free(ca);
    EVP_PKEY_free(cakey);
    return 0;
}

int identity_ensure(const struct pp_config *cfg, struct tls_identity *id, char *err,
                    size_t errlen)
{
    X509 *ca = NULL;
    EVP_PKEY *cakey = NULL;
    char san[SAN_MAX];
    const char *why;
    int rc = 0;

    identity_paths(cfg, id);
    if (id->custom) {
        return 0;
    }
    if (ensure_dir(cfg->state_dir, err, errlen) != 0 ||
        load_or_make_ca(id, &ca, &cakey, err, errlen) != 0) {
        return -1;
    }
    build_san(cfg, san, sizeof(san));
    why = server_stale(id, ca, san);
    if (why != NULL) {
        if (strcmp(why, "missing") != 0) {
            log_info(NULL, 0, "renewing the server certificate: %s", why);
        }
        rc = generate_server(cfg, id, ca, cakey, san, err, errlen);
    }
    X509_free(ca);
    EVP_PKEY_free(cakey);
    return rc;
}

/* Server cipher preference, cheapest strong first; the rest of OpenSSL's defaults follow. */
static const char server_suites_tls13[] =
    "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384";
static const char server_ciphers_tls12[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:DEFAULT";

SSL_CTX *identity_server_ctx(const struct tls_identity *id, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        ssl_err(err, errlen, "cannot create a TLS context");
        return NULL;
    }
    tls_ctx_harden(ctx);
    /*
     * The proxy encrypts every report and frame once per client, so the server picks
     * the cheapest strong cipher: AES-128-GCM, or ChaCha20 for a client that prefers
     * it (one without AES instructions). OpenSSL's own order would take AES-256-GCM.
     */
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
    if (SSL_CTX_set_ciphersuites(ctx, server_suites_tls13) != 1 ||
        SSL_CTX_set_cipher_list(ctx, server_ciphers_tls12) != 1) {
        ssl_err(err, errlen, "cannot set the TLS cipher preference");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, id->cert) != 1) {
        ssl_err(err, errlen, "cannot load certificate");
        snprintf(err + strlen(err), errlen - strlen(err), " (%s)", id->cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, id->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ssl_err(err, errlen, "cannot load the private key or it does not match the certificate");
        snprintf(err + strlen(err), errlen - strlen(err), " (%s)", id->key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int check_pair(const char *cert, const char *key, bool must_exist, char *err,
                      size_t errlen)
{
    X509 *x;
    EVP_PKEY *k;
    int rc = 0;

    if (!must_exist && access(cert, F_OK) != 0 && access(key, F_OK) != 0) {
        return 0; /* not generated yet: fine */
    }
    x = load_cert(cert);
    k = load_key(key);
    if (x == NULL) {
        snprintf(err, errlen, "%s: cannot read a PEM certificate (%s)", cert,
                 access(cert, R_OK) != 0 ? strerror(errno) : "bad format");
        rc = -1;
    } else if (k == NULL) {
        snprintf(err, errlen, "%s: cannot read a PEM private key (%s)", key,
                 access(key, R_OK) != 0 ? strerror(errno) : "bad format");
        rc = -1;
    } else if (X509_check_private_key(x, k) != 1) {
        snprintf(err, errlen, "%s does not match the certificate %s", key, cert);
        rc = -1;
    }
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return rc;
}

int identity_check(const struct pp_config *cfg, char *err, size_t errlen)
{
    struct tls_identity id;

    identity_paths(cfg, &id);
    if (id.custom) {
        return check_pair(id.cert, id.key, true, err, errlen);
    }
    return check_pair(id.cert, id.key, false, err, errlen) != 0 ||
                   check_pair(id.ca_cert, id.ca_key, false, err, errlen) != 0
               ? -1
               : 0;
}

int identity_fingerprint(const char *pem_path, char *out, size_t outlen)
{
    X509 *x = load_cert(pem_path);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (x == NULL || X509_digest(x, EVP_sha256(), md, &n) != 1) {
        X509_free(x);
        return -1;
    }
    X509_free(x);
    if (outlen < (size_t)n * 3) {
        return -1;
    }
    for (unsigned int i = 0; i < n; i++) {
        snprintf(out + i * 3, outlen - i * 3, "%02X%s", md[i], i + 1 < n ? ":" : "");
    }
    return 0;
}
