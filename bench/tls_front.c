/* SPDX-License-Identifier: MIT */
/*
 * tls_front.c -- see tls_front.h.
 */
#include "tls_front.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SEGOPS_SOURCE_DIR
#error "SEGOPS_SOURCE_DIR must name the source tree (set by bench/CMakeLists.txt)"
#endif
#define MKCERTS SEGOPS_SOURCE_DIR "/tests/tls/mkcerts.sh"

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Full path of program `name`: $PATH, then the sbin directories, where
 * Debian installs nginx and which a normal user's PATH often lacks.
 * Returns 0 when found. */
static int find_program(const char *name, char *out, size_t cap)
{
    const char *env = getenv("PATH");
    char dirs[2048];
    snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/local/sbin:/sbin", env ? env : "/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if ((size_t)snprintf(out, cap, "%s/%s", d, name) >= cap)
            continue;
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* In a child just forked: stdout and stderr to `log` (so nothing lands in
 * the bench's table), stdin from /dev/null. */
static void child_stdio(const char *log)
{
    int in = open("/dev/null", O_RDONLY);
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in >= 0)
        dup2(in, 0);
    if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
    }
}

/* Runs argv (argv[0] a full path) to completion; its output goes to log.
 * Returns its exit status, or -1. */
static int run(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        child_stdio(log);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The last non-empty line of a text file into buf ("" if none). */
static void last_line(const char *path, char *buf, size_t cap)
{
    char line[512];
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\n");
        if (n == 0)
            continue;
        if (n >= cap)
            n = cap - 1;
        memcpy(buf, line, n);
        buf[n] = 0;
    }
    fclose(f);
}

/* Parent pid from /proc/<pid>/stat; the command name may hold spaces and
 * parentheses, so parse after the last ')'.  -1 on error. */
static pid_t parent_of(pid_t pid)
{
    char path[64], text[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = 0;
    char *p = strrchr(text, ')');
    int ppid;
    if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
        return -1;
    return (pid_t)ppid;
}

/* nginx's master forks its worker after it has bound the port, so look for
 * a child of the master for up to 2 s.  -1 if none. */
static pid_t find_worker(pid_t master)
{
    for (int waited = 0; waited < 2000; waited += 20) {
        DIR *d = opendir("/proc");
        if (!d)
            return -1;
        struct dirent *e;
        pid_t found = -1;
        while (found < 0 && (e = readdir(d)) != NULL) {
            pid_t pid = (pid_t)atoi(e->d_name);
            if (pid > 0 && parent_of(pid) == master)
                found = pid;
        }
        closedir(d);
        if (found > 0)
            return found;
        pause_ms(20);
    }
    return -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0; /* keep going: remove as much as possible */
}

static int write_conf(const struct tls_front *f, const char *path, uint16_t sink_port)
{
    FILE *c = fopen(path, "w");
    if (!c)
        return -1;
    const char *d = f->dir;
    /* As root, nginx would switch its worker to the build's default user
     * (www-data), which cannot read the keys in our 0700 directory. */
    fprintf(c, "%s", geteuid() == 0 ? "user root;\n" : "");
    fprintf(c,
            "worker_processes 1;\n"
            "daemon off;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s/error.log warn;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            "  access_log off;\n"
            /* every temp path inside our directory: the built-in ones are
             * under /var/lib/nginx, not ours to write (or to litter) */
            "  client_body_temp_path %s/body;\n"
            "  proxy_temp_path %s/proxy;\n"
            "  fastcgi_temp_path %s/fcgi;\n"
            "  uwsgi_temp_path %s/uwsgi;\n"
            "  scgi_temp_path %s/scgi;\n"
            /* a batch is at most max_batch_bytes (1 MiB by default): room
             * for any body, and never a temp file */
            "  client_max_body_size 8m;\n"
            "  client_body_buffer_size 2m;\n"
            /* one client connection for the whole run */
            "  keepalive_timeout 60s;\n"
            "  keepalive_requests 1000000;\n"
            "  upstream sink {\n"
            "    server 127.0.0.1:%u;\n"
            "    keepalive 4;\n"
            "    keepalive_requests 1000000;\n"
            "  }\n"
            "  server {\n"
            "    listen 127.0.0.1:%u ssl;\n"
            "    server_name localhost;\n"
            "    ssl_certificate %s/server.pem;\n"
            "    ssl_certificate_key %s/server.key;\n"
            "    ssl_protocols TLSv1.2 TLSv1.3;\n"
            "    location / {\n"
            "      proxy_pass http://sink;\n"
            "      proxy_http_version 1.1;\n"
            "      proxy_set_header Connection \"\";\n"
            /* pass the body on as it is decrypted rather than after its
             * last byte: the sink receives while nginx still decrypts, and
             * with one request in flight that overlap is throughput
             * (measured: ~10-20% more events/s than buffering) */
            "      proxy_request_buffering off;\n"
            "      proxy_buffering off;\n"
            "    }\n"
            "  }\n"
            "}\n",
            d, d, d, d, d, d, d, (unsigned)sink_port, (unsigned)f->port, d, d);
    return fclose(c) == 0 ? 0 : -1;
}

struct tls_front *tls_front_start(uint16_t sink_port, char *why, size_t why_cap)
{
    char nginx[512], openssl[512], bash[512];
    if (find_program("nginx", nginx, sizeof(nginx)) != 0) {
        snprintf(why, why_cap, "nginx not found");
        return NULL;
    }
    if (find_program("openssl", openssl, sizeof(openssl)) != 0) {
        snprintf(why, why_cap, "openssl not found");
        return NULL;
    }
    if (find_program("bash", bash, sizeof(bash)) != 0 || access(MKCERTS, R_OK) != 0) {
        snprintf(why, why_cap, "cannot run %s", MKCERTS);
        return NULL;
    }
    struct tls_front *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(why, why_cap, "out of memory");
        return NULL;
    }
    f->worker = -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/segops-bench-tls-XXXXXX");
    if (!mkdtemp(f->dir)) {
        snprintf(why, why_cap, "mkdtemp failed");
        free(f);
        return NULL;
    }
    snprintf(f->ca, sizeof(f->ca), "%s/ca.pem", f->dir);

    char log[128], conf[128], elog[128];
    snprintf(log, sizeof(log), "%s/setup.log", f->dir);
    snprintf(conf, sizeof(conf), "%s/nginx.conf", f->dir);
    snprintf(elog, sizeof(elog), "%s/error.log", f->dir);
    char *mk[] = {bash, MKCERTS, f->dir, NULL};
    if (run(mk, log) != 0) {
        snprintf(why, why_cap, "mkcerts.sh failed");
        goto fail;
    }
    f->port = free_port();
    if (f->port == 0 || write_conf(f, conf, sink_port) != 0) {
        snprintf(why, why_cap, "cannot write nginx.conf");
        goto fail;
    }
    snprintf(f->url, sizeof(f->url), "https://localhost:%u", (unsigned)f->port);

    /* argv before fork: the child of a threaded process only execs */
    char *argv[] = {nginx, "-p", f->dir, "-e", elog, "-c", conf, NULL};
    pid_t parent = getpid();
    f->master = fork();
    if (f->master < 0) {
        snprintf(why, why_cap, "fork failed");
        goto fail;
    }
    if (f->master == 0) {
        /* if the bench dies without stopping us, nginx gets SIGTERM (and
         * takes its worker down) instead of holding the port forever */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        child_stdio(log);
        execv(argv[0], argv);
        _exit(127);
    }
    for (int waited = 0; waited < 10000; waited += 20) {
        if (waitpid(f->master, NULL, WNOHANG) == f->master) {
            f->master = 0; /* reaped: nothing left to stop */
            char line[160];
            last_line(elog, line, sizeof(line));
            snprintf(why, why_cap, "nginx did not start: %s", line[0] ? line : "no error log");
            goto fail;
        }
        if (port_open(f->port)) {
            f->worker = find_worker(f->master);
            return f;
        }
        pause_ms(20);
    }
    snprintf(why, why_cap, "nginx did not open port %u in 10 s", (unsigned)f->port);
fail:
    tls_front_stop(f);
    return NULL;
}

int64_t tls_front_cpu_ns(const struct tls_front *f)
{
    if (!f || f->worker <= 0)
        return -1;
    char path[64];
    /* schedstat: ns on CPU, exact; nginx's worker is single-threaded */
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)f->worker);
    FILE *s = fopen(path, "r");
    if (s) {
        unsigned long long ns;
        int ok = fscanf(s, "%llu", &ns) == 1;
        fclose(s);
        if (ok)
            return (int64_t)ns;
    }
    /* without schedstats: utime + stime of /proc/<pid>/stat, in ticks */
    char text[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)f->worker);
    s = fopen(path, "r");
    if (!s)
        return -1;
    size_t n = fread(text, 1, sizeof(text) - 1, s);
    fclose(s);
    text[n] = 0;
    const char *p = strrchr(text, ')');
    unsigned long ut, st;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (int64_t)((double)(ut + st) * 1e9 / (double)sysconf(_SC_CLK_TCK));
}

void tls_front_stop(struct tls_front *f)
{
    if (!f)
        return;
    if (f->master > 0) {
        /* SIGTERM: nginx's fast shutdown; the master stops its worker and
         * exits.  Give it 5 s, then kill both. */
        kill(f->master, SIGTERM);
        int done = 0;
        for (int waited = 0; waited < 5000 && !done; waited += 10) {
            done = waitpid(f->master, NULL, WNOHANG) == f->master;
            if (!done)
                pause_ms(10);
        }
        if (!done) {
            if (f->worker > 0)
                kill(f->worker, SIGKILL);
            kill(f->master, SIGKILL);
            waitpid(f->master, NULL, 0);
        }
    }
    if (f->dir[0])
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
}
