/* SPDX-License-Identifier: MIT */
/*
 * tls_fixture.c -- see tls_fixture.h.
 */
#include "tls_fixture.h"

#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

char tls_dir[64];
uint16_t tls_ports[TLS_NPORTS];
pid_t tls_nginx_pid;
int tls_have_ipv6;
static pid_t s_server_pid;
static int s_server_stdin = -1;

uint16_t tls_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t l = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* 1 when [::1] can be bound (IPv6 loopback configured). */
static int ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* v6: listen on [::1] too, same port */
static void server_block_x(FILE *f, uint16_t port, const char *cert, int keepalive,
                           const char *max_body, int v6, const char *extra)
{
    if (v6)
        fprintf(f, "  server {\n    listen [::1]:%u ssl;\n", (unsigned)port);
    else
        fprintf(f, "  server {\n");
    fprintf(f,
            "    listen 127.0.0.1:%u ssl;\n"
            "    server_name localhost;\n"
            "    ssl_certificate %s/%s.pem;\n"
            "    ssl_certificate_key %s/%s.key;\n"
            "    client_max_body_size %s;\n"
            "%s"
            "    keepalive_timeout %s;\n"
            "    location / {\n"
            "      proxy_pass http://sink;\n"
            "      proxy_http_version 1.1;\n"
            "      proxy_set_header Connection \"\";\n"
            "    }\n"
            "  }\n",
            (unsigned)port, tls_dir, cert, tls_dir, cert, max_body, extra, keepalive ? "60s" : "0");
}

static void server_block(FILE *f, uint16_t port, const char *cert, int keepalive,
                         const char *max_body, int v6)
{
    server_block_x(f, port, cert, keepalive, max_body, v6, "");
}

void tls_nginx_start(uint16_t sink_port)
{
    snprintf(tls_dir, sizeof(tls_dir), "/tmp/segops-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(tls_dir));
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s/tls/mkcerts.sh %s", SEGOPS_TESTS_DIR, tls_dir);
    cr_assert_eq(system(cmd), 0, "making certificates failed");
    /* every port from a socket still bound while the next is picked: one
     * port at a time (bind, close, bind...) can return the same port twice,
     * and nginx then serves both blocks' names from the first certificate */
    int held[TLS_NPORTS];
    for (int i = 0; i < TLS_NPORTS; i++) {
        held[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        cr_assert_eq(bind(held[i], (struct sockaddr *)&a, sizeof(a)), 0);
        socklen_t l = sizeof(a);
        getsockname(held[i], (struct sockaddr *)&a, &l);
        tls_ports[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < TLS_NPORTS; i++)
        close(held[i]);
    char path[128];
    snprintf(path, sizeof(path), "%s/nginx.conf", tls_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "%s"
            "worker_processes 1;\n"
            "daemon off;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s/error.log warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "  log_format reuse '$server_port $ssl_session_reused $connection $status "
            "$ssl_cipher $ssl_server_name $http_host';\n"
            "  access_log %s/access.log reuse;\n"
            "  client_body_temp_path %s/body;\n"
            "  proxy_temp_path %s/proxy;\n"
            "  fastcgi_temp_path %s/fcgi;\n"
            "  uwsgi_temp_path %s/uwsgi;\n"
            "  scgi_temp_path %s/scgi;\n"
            "  client_max_body_size 64m;\n"
            "  client_body_buffer_size 4m;\n"
            "  keepalive_requests 1000000;\n"
            "  ssl_protocols TLSv1.2;\n"
            "  ssl_session_cache shared:segops:1m;\n"
            "  ssl_session_tickets off;\n"
            "  upstream sink { server 127.0.0.1:%u; keepalive 4; }\n",
            geteuid() == 0 ? "user root;\n" : "", tls_dir, tls_dir, tls_dir, tls_dir, tls_dir, tls_dir, tls_dir, tls_dir,
            (unsigned)sink_port);
    tls_have_ipv6 = ipv6_loopback();
    server_block(f, tls_ports[TLS_GOOD], "server", 1, "64m", 0);
    server_block(f, tls_ports[TLS_WRONG], "wronghost", 1, "64m", 0);
    server_block(f, tls_ports[TLS_EXPIRED], "expired", 1, "64m", 0);
    server_block(f, tls_ports[TLS_ROGUE], "rogue", 1, "64m", 0);
    server_block(f, tls_ports[TLS_CLOSE], "server", 0, "64m", 0);
    server_block(f, tls_ports[TLS_SMALL], "server", 1, "16k", 0);
    server_block(f, tls_ports[TLS_IP], "ipsan", 1, "64m", tls_have_ipv6);
    server_block(f, tls_ports[TLS_OTHERIP], "otherip", 1, "64m", 0);
    server_block(f, tls_ports[TLS_CNONLY], "cnonly", 1, "64m", 0);
    server_block_x(f, tls_ports[TLS_EARLY], "server", 1, "16k", 0, "    lingering_close off;\n");
    fprintf(f, "}\n");
    fclose(f);

    tls_nginx_pid = fork();
    cr_assert_geq(tls_nginx_pid, 0);
    if (tls_nginx_pid == 0) {
        char elog[128];
        snprintf(elog, sizeof(elog), "%s/error.log", tls_dir);
        execlp("nginx", "nginx", "-p", tls_dir, "-e", elog, "-c", path, (char *)NULL);
        _exit(127);
    }
    for (int waited = 0; waited < 10000; waited += 20) {
        int all = 1;
        for (int i = 0; i < TLS_NPORTS; i++)
            all = all && port_open(tls_ports[i]);
        if (all)
            return;
        h_sleep_ms(20);
    }
    cr_assert_fail("nginx did not start (see %s/error.log)", tls_dir);
}

uint16_t tls_s_server_start(const char *cert, const char *const *args)
{
    char crt[128], key[128], acc[32];
    const char *argv[32];
    int n = 0, fds[2];
    uint16_t port = tls_free_port();
    snprintf(crt, sizeof(crt), "%s/%s.pem", tls_dir, cert);
    snprintf(key, sizeof(key), "%s/%s.key", tls_dir, cert);
    snprintf(acc, sizeof(acc), "127.0.0.1:%u", (unsigned)port);
    argv[n++] = "openssl";
    argv[n++] = "s_server";
    argv[n++] = "-quiet";
    argv[n++] = "-accept";
    argv[n++] = acc;
    argv[n++] = "-cert";
    argv[n++] = crt;
    argv[n++] = "-key";
    argv[n++] = key;
    for (int i = 0; args && args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    cr_assert_eq(pipe(fds), 0);
    s_server_pid = fork();
    cr_assert_geq(s_server_pid, 0);
    if (s_server_pid == 0) {
        /* stdin: the pipe, which stays open (s_server would end its
         * sessions on EOF); output: a log in tls_dir */
        char out[128];
        snprintf(out, sizeof(out), "%s/s_server.log", tls_dir);
        FILE *lf = fopen(out, "w");
        dup2(fds[0], 0);
        if (lf) {
            dup2(fileno(lf), 1);
            dup2(fileno(lf), 2);
        }
        close(fds[1]);
        execvp("openssl", (char *const *)argv);
        _exit(127);
    }
    close(fds[0]);
    s_server_stdin = fds[1];
    for (int waited = 0; waited < 10000; waited += 20) {
        if (port_open(port))
            return port;
        h_sleep_ms(20);
    }
    cr_assert_fail("openssl s_server did not start (see %s/s_server.log)", tls_dir);
    return 0;
}

void tls_s_server_stop(void)
{
    if (s_server_pid > 0) {
        kill(s_server_pid, SIGTERM);
        waitpid(s_server_pid, NULL, 0);
        s_server_pid = 0;
    }
    if (s_server_stdin >= 0)
        close(s_server_stdin);
    s_server_stdin = -1;
}

void tls_nginx_stop(void)
{
    tls_s_server_stop();
    if (tls_nginx_pid > 0) {
        kill(tls_nginx_pid, SIGTERM);
        waitpid(tls_nginx_pid, NULL, 0);
        tls_nginx_pid = 0;
    }
    if (tls_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tls_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tls_dir);
        tls_dir[0] = 0;
    }
}
