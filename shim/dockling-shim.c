/*
 * dockling-shim: the monitor of one container (or one exec'd process).
 *
 * It creates the container with the OCI runtime (runc), holds the
 * container's stdio (pipes, or a pty master received from runc over the
 * console socket), writes the json-file log, serves attach/resize/start/wait
 * requests on a unix socket, reaps the container's process and records its
 * exit status in STATE/exit.  It runs in its own session as a child
 * subreaper, so containers outlive a crash of the daemon.  Plain C and libc
 * only, so each running container costs very little memory.
 *
 * Usage:
 *   dockling-shim --runtime PATH --runtime-root DIR --id ID --bundle DIR
 *                 --state-dir DIR [--tty] [--stdin]
 *                 [--log PATH [--log-max-size BYTES] [--log-max-files N]]
 *                 [--exec PROCESS_JSON]
 * Prints exactly one line: "ok PID" or "error MESSAGE".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define LOG_LINE_MAX 16384          /* partial lines are flushed at this size */
#define CLIENT_BUF_MAX (1024 * 1024) /* output queued for one slow client */
#define CLIENT_BUF_KEEP (64 * 1024)  /* a bigger queue is freed once emptied */
#define STDIN_BUF_MAX (64 * 1024)   /* client input not yet taken by the container */
#define CMD_MAX 256
#define CLIENT_READ 16384 /* bytes read from a client at once */
#define DRAIN_IDLE_MS 100   /* after exit: output is drained once idle this long */
#define DRAIN_MAX_MS 5000   /* ... or after this long at most */

/* ------------------------------------------------------------------ options */

static struct {
    const char *runtime, *runtime_root, *id, *bundle, *state_dir;
    const char *log_path, *exec_process;
    long long log_max_size;
    int log_max_files, tty, open_stdin;
} opt = {.log_max_files = 1};

/* ------------------------------------------------------------------- state */

enum { C_FREE, C_CMD, C_ATTACH, C_WAIT };

struct client {
    int fd, state;
    char cmd[CMD_MAX];
    size_t cmd_len;
    int want_in, want_out, want_err, close_stdin, in_eof;
    char *obuf; /* queued output: olen bytes from ostart, ocap allocated */
    size_t ostart, olen, ocap;
};

static struct client clients[MAX_CLIENTS];
static int sync_fd = -1, sig_fd = -1, attach_fd = -1, console_fd = -1;
static int out_fd[2] = {-1, -1}; /* stdout, stderr (pty master as stdout) */
static int in_fd = -1;           /* container stdin: pipe write end or pty master dup */
static int pty_master = -1;
static int child_fds[3] = {-1, -1, -1}; /* container-side ends, closed once runc ran */
static pid_t main_pid;
static int exited, exit_code, started;
static char finished_at[64];
static char *ibuf;
static size_t ilen;
static int stdin_close_pending;
static char attach_path[PATH_MAX], console_path[PATH_MAX];
static int attach_rel, console_rel; /* bound by relative name (long state dir) */

/* children reaped before main_pid was known */
static struct { pid_t pid; int status; } early[32];
static int n_early;

/* json-file log */
static int log_fd = -1;
static long long log_size;
static char line_buf[2][LOG_LINE_MAX];
static size_t line_len[2];
static char json_buf[LOG_LINE_MAX * 6 + 256];

/* ----------------------------------------------------------------- helpers */

static void now_rfc3339(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

/* A log record's time as Go's RFC3339Nano writes it (Docker's json-file): trailing zeros
 * of the fraction dropped, so files match Docker's byte for byte in size. */
static void log_time(char *out, size_t n)
{
    now_rfc3339(out, n);
    char *dot = strchr(out, '.');
    char *zone = dot ? strchr(dot, 'Z') : NULL;
    if (!zone)
        return;
    char *end = zone;
    while (end > dot + 1 && end[-1] == '0')
        end--;
    if (end == dot + 1)
        end = dot; /* a whole second: no fraction at all */
    memmove(end, zone, strlen(zone) + 1);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void xclose(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Make a path absolute against the current directory (before we chdir away). */
static const char *absolute(const char *p)
{
    if (!p || p[0] == '/')
        return p;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return p;
    size_t n = strlen(cwd) + strlen(p) + 2;
    char *r = malloc(n);
    if (!r)
        return p;
    snprintf(r, n, "%s/%s", cwd, p);
    return r;
}

static int exit_code_of(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 255;
}

/* ------------------------------------------------------- runtime processes */

/* Fork and exec the runtime with the given stdio; the child gets a clean signal state. */
static pid_t spawn(char *const argv[], int in, int out, int err)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(126);
    execv(argv[0], argv);
    _exit(127);
}

static int wait_for(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return st;
}

/*
 * The runtime's error as a clean sentence: the msg="..." value of the last
 * level=error line of its log file, with \" and \\ unescaped.
 */
static void runtime_error(const char *log_file, int status, char *out, size_t n)
{
    snprintf(out, n, "%s exited with status %d", opt.runtime, exit_code_of(status));
    FILE *f = fopen(log_file, "re");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    while (getline(&line, &cap, f) > 0) {
        if (!strstr(line, "level=error") && !strstr(line, "level=fatal")) {
            /* crun logs plain sentences: the last one is its error, unless runc's form follows. */
            size_t len = strcspn(line, "\n");
            if (!found && len > 0 && !strstr(line, "level=")) {
                if (len >= n)
                    len = n - 1;
                memcpy(out, line, len);
                out[len] = 0;
            }
            continue;
        }
        found = 1;
        char *m = strstr(line, "msg=");
        if (!m)
            continue;
        m += 4;
        size_t o = 0;
        if (*m == '"') {
            m++;
            for (; *m && *m != '"' && o + 1 < n; m++) {
                if (*m == '\\' && m[1]) {
                    m++;
                    out[o++] = *m == 'n' ? ' ' : *m == 't' ? ' ' : *m;
                } else {
                    out[o++] = *m;
                }
            }
        } else {
            for (; *m && *m != ' ' && *m != '\n' && o + 1 < n; m++)
                out[o++] = *m;
        }
        out[o] = 0;
    }
    free(line);
    fclose(f);
}

static int read_pid_file(void)
{
    char buf[32] = {0};
    int fd = open("pid", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    int pid = atoi(buf);
    return pid > 0 ? pid : -1;
}

/* Receive the pty master runc sends over the console socket. */
static int receive_console(void)
{
    int c = accept4(console_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0)
        return -1;
    int fd = -1;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        char data[256];
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                             .msg_controllen = sizeof u.buf};
        ssize_t r = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd p = {.fd = c, .events = POLLIN};
            poll(&p, 1, 50);
            continue;
        }
        if (r <= 0)
            break;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                memcpy(&fd, CMSG_DATA(cm), sizeof(int));
        }
    }
    close(c);
    return fd;
}

/*
 * Run `runtime create` (container mode) or `runtime exec -d` (exec mode).
 * Returns the process pid, or -1 with the runtime's error in `err`.
 */
static int run_runtime(int exec_mode, char *err, size_t errn)
{
    const char *log_file = exec_mode ? "runtime-exec.log" : "runtime-create.log";
    unlink(log_file);
    unlink("pid");
    char *argv[24];
    int a = 0;
    argv[a++] = (char *)opt.runtime;
    argv[a++] = "--root";
    argv[a++] = (char *)opt.runtime_root;
    argv[a++] = "--log";
    argv[a++] = (char *)log_file;
    if (exec_mode) {
        argv[a++] = "exec";
        argv[a++] = "-d";
        argv[a++] = "--process";
        argv[a++] = (char *)opt.exec_process;
    } else {
        argv[a++] = "create";
        argv[a++] = "--bundle";
        argv[a++] = (char *)opt.bundle;
    }
    char pid_path[PATH_MAX];
    snprintf(pid_path, sizeof pid_path, "%s/pid", opt.state_dir);
    argv[a++] = "--pid-file";
    argv[a++] = pid_path;
    if (opt.tty) {
        argv[a++] = "--console-socket";
        argv[a++] = console_rel ? "console.sock" : console_path;
    }
    argv[a++] = (char *)opt.id;
    argv[a] = NULL;

    pid_t pid = spawn(argv, child_fds[0], child_fds[1], child_fds[2]);
    if (pid < 0) {
        snprintf(err, errn, "fork: %s", strerror(errno));
        return -1;
    }
    int st = wait_for(pid);
    if (st != 0) {
        runtime_error(log_file, st, err, errn);
        return -1;
    }
    if (opt.tty) {
        pty_master = receive_console();
        if (pty_master < 0) {
            snprintf(err, errn, "the runtime did not send the console of the container");
            return -1;
        }
        set_nonblock(pty_master);
        out_fd[0] = pty_master;
        in_fd = fcntl(pty_master, F_DUPFD_CLOEXEC, 3);
    }
    /* The container holds its own ends now; ours would hide its EOF. */
    for (int i = 0; i < 3; i++)
        xclose(&child_fds[i]);
    int p = read_pid_file();
    if (p < 0)
        snprintf(err, errn, "the runtime wrote no pid file");
    return p;
}

static void delete_container(void)
{
    char *argv[] = {(char *)opt.runtime, "--root", (char *)opt.runtime_root, "delete", "--force",
                    (char *)opt.id, NULL};
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    pid_t pid = spawn(argv, null, null, null);
    if (pid > 0)
        wait_for(pid);
    close(null);
}

/* ------------------------------------------------------------ json-file log */

/* Length of the valid UTF-8 sequence at s, or 0 if the bytes are not one. */
static int utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))
            return 0; /* overlong, or a surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

static size_t json_escape(char *o, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c >= 0x80) {
            int l = utf8_len(s + i, n - i);
            if (l == 0) {
                memcpy(o + k, "\\ufffd", 6);
                k += 6;
                i++;
            } else if (l == 3 && c == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] & 0xFE) == 0xA8) {
                /* U+2028/2029 end lines in JavaScript; escape them as Go does */
                k += (size_t)sprintf(o + k, "\\u202%c", s[i + 2] == 0xA8 ? '8' : '9');
                i += 3;
            } else {
                memcpy(o + k, s + i, (size_t)l);
                k += (size_t)l;
                i += (size_t)l;
            }
            continue;
        }
        i++;
        switch (c) {
        case '"': o[k++] = '\\'; o[k++] = '"'; break;
        case '\\': o[k++] = '\\'; o[k++] = '\\'; break;
        case '\n': o[k++] = '\\'; o[k++] = 'n'; break;
        case '\r': o[k++] = '\\'; o[k++] = 'r'; break;
        case '\t': o[k++] = '\\'; o[k++] = 't'; break;
        default:
            if (c < 0x20) {
                memcpy(o + k, "\\u00", 4);
                o[k + 4] = hex[c >> 4];
                o[k + 5] = hex[c & 15];
                k += 6;
            } else {
                o[k++] = (char)c;
            }
        }
    }
    return k;
}

static void log_open(void)
{
    log_fd = open(opt.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat st;
    log_size = log_fd >= 0 && fstat(log_fd, &st) == 0 ? st.st_size : 0;
}

static void log_rotate(void)
{
    if (opt.log_max_files <= 1) {
        /* one file: restart it in place, as Docker does with max-file=1 */
        if (ftruncate(log_fd, 0) == 0)
            log_size = 0;
        return;
    }
    size_t n = strlen(opt.log_path) + 16;
    char from[n], to[n];
    for (int i = opt.log_max_files - 1; i >= 2; i--) {
        snprintf(from, n, "%s.%d", opt.log_path, i - 1);
        snprintf(to, n, "%s.%d", opt.log_path, i);
        rename(from, to);
    }
    snprintf(to, n, "%s.1", opt.log_path);
    rename(opt.log_path, to);
    xclose(&log_fd);
    log_open();
}

static void log_record(int stream, const char *p, size_t n)
{
    if (log_fd < 0 || n == 0)
        return;
    char ts[64];
    log_time(ts, sizeof ts);
    size_t k = 0;
    memcpy(json_buf, "{\"log\":\"", 8);
    k = 8;
    k += json_escape(json_buf + k, (const unsigned char *)p, n);
    k += (size_t)sprintf(json_buf + k, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n",
                         stream ? "stderr" : "stdout", ts);
    /* As Docker's json-file: a file never grows past max-size by an entry; the entry
     * that would cross it starts the next file (unless the file is still empty). */
    if (opt.log_max_size > 0 && log_size > 0 && log_size + (long long)k > opt.log_max_size)
        log_rotate();
    if (write_all(log_fd, json_buf, k) == 0)
        log_size += (long long)k;
}

/* Split output into lines; a line without "\n" waits until it is 16 KiB or the stream ends. */
static void log_data(int s, const char *p, size_t n)
{
    if (log_fd < 0)
        return;
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) + 1 : n;
        size_t room = LOG_LINE_MAX - line_len[s];
        if (take > room) {
            take = room;
            nl = NULL;
        }
        memcpy(line_buf[s] + line_len[s], p, take);
        line_len[s] += take;
        p += take;
        n -= take;
        if (nl || line_len[s] == LOG_LINE_MAX) {
            log_record(s, line_buf[s], line_len[s]);
            line_len[s] = 0;
        }
    }
}

static void log_flush(int s)
{
    log_record(s, line_buf[s], line_len[s]);
    line_len[s] = 0;
}

/* ----------------------------------------------------------------- clients */

static void client_close(struct client *c)
{
    xclose(&c->fd);
    free(c->obuf);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->state = C_FREE;
}

static void client_reply(struct client *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = (int)sizeof buf - 1;
    /* a fresh socket's buffer is empty, so a short reply never blocks */
    if (n > 0)
        send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
    client_close(c);
}

/* Send what is queued; drop the client if its socket is broken. */
static void client_flush(struct client *c)
{
    while (c->olen > 0) {
        ssize_t w = send(c->fd, c->obuf + c->ostart, c->olen, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                client_close(c);
            return;
        }
        c->ostart += (size_t)w;
        c->olen -= (size_t)w;
    }
    c->ostart = 0;
    if (c->ocap > CLIENT_BUF_KEEP) {
        /* a burst is over: give the memory back */
        free(c->obuf);
        c->obuf = NULL;
        c->ocap = 0;
    }
}

/* Room for `need` more queued bytes: compact, then grow by doubling. */
static int queue_reserve(struct client *c, size_t need)
{
    if (c->ostart + c->olen + need <= c->ocap)
        return 0;
    if (c->ostart > 0) {
        memmove(c->obuf, c->obuf + c->ostart, c->olen);
        c->ostart = 0;
    }
    if (c->olen + need <= c->ocap)
        return 0;
    size_t cap = c->ocap ? c->ocap : CLIENT_BUF_KEEP;
    while (cap < c->olen + need)
        cap *= 2;
    char *b = realloc(c->obuf, cap);
    if (!b)
        return -1;
    c->obuf = b;
    c->ocap = cap;
    return 0;
}

/* Queue one frame of output for every attached client that asked for the stream. */
static void broadcast(int stream, const char *p, size_t n)
{
    unsigned char hdr[8] = {(unsigned char)(stream + 1), 0, 0, 0, (unsigned char)(n >> 24),
                            (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &clients[i];
        if (c->state != C_ATTACH || !(stream ? c->want_err : c->want_out))
            continue;
        size_t sent = 0;
        if (c->olen == 0) {
            struct iovec iov[2] = {{hdr, 8}, {(void *)p, n}};
            struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
            ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                client_close(c);
                continue;
            }
            sent = w > 0 ? (size_t)w : 0;
            if (sent == n + 8)
                continue;
        } else if (c->olen + n + 8 > CLIENT_BUF_MAX) {
            continue; /* a slow client loses whole frames; the container never waits */
        }
        if (queue_reserve(c, n + 8 - sent) < 0) {
            client_close(c);
            continue;
        }
        /* queue the unsent tail of header + payload */
        char *dst = c->obuf + c->ostart + c->olen;
        size_t hoff = sent < 8 ? sent : 8;
        memcpy(dst, hdr + hoff, 8 - hoff);
        dst += 8 - hoff;
        size_t poff = sent > 8 ? sent - 8 : 0;
        memcpy(dst, p + poff, n - poff);
        c->olen += n + 8 - sent;
    }
}

static void stdin_push(const char *p, size_t n)
{
    if (in_fd < 0 || n == 0)
        return; /* no stdin: the bytes have nowhere to go */
    /* clients are read only while ilen < STDIN_BUF_MAX, at most CLIENT_READ at a time */
    if (!ibuf && !(ibuf = malloc(STDIN_BUF_MAX + CLIENT_READ)))
        return;
    if (n > STDIN_BUF_MAX + CLIENT_READ - ilen)
        n = STDIN_BUF_MAX + CLIENT_READ - ilen;
    memcpy(ibuf + ilen, p, n);
    ilen += n;
}

static void stdin_flush(void)
{
    while (in_fd >= 0 && ilen > 0) {
        ssize_t w = write(in_fd, ibuf, ilen);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            /* the container closed its stdin or exited: discard */
            ilen = 0;
            if (in_fd != pty_master)
                xclose(&in_fd);
            return;
        }
        memmove(ibuf, ibuf + w, ilen - (size_t)w);
        ilen -= (size_t)w;
    }
    if (stdin_close_pending && ilen == 0 && in_fd >= 0) {
        stdin_close_pending = 0;
        if (opt.tty)
            (void)!write(in_fd, "\x04", 1); /* EOF for a cooked tty */
        else
            xclose(&in_fd);
    }
}

static int do_start(char *err, size_t errn);
static void record_exit(int status);

static void handle_command(struct client *c, const char *rest, size_t rest_n)
{
    char *cmd = c->cmd;
    int a, b, d, e;
    if (sscanf(cmd, "attach %d %d %d %d", &a, &b, &d, &e) == 4) {
        /* The acknowledgement tells the daemon this client now receives output, so that
         * `runc start` after it cannot race the registration. Nothing is queued yet. */
        send(c->fd, "ok\n", 3, MSG_NOSIGNAL);
        c->state = C_ATTACH;
        c->want_in = a, c->want_out = b, c->want_err = d, c->close_stdin = e;
        if (a)
            stdin_push(rest, rest_n);
    } else if (sscanf(cmd, "resize %d %d", &a, &b) == 2) {
        if (pty_master >= 0) {
            struct winsize ws = {.ws_row = (unsigned short)a, .ws_col = (unsigned short)b};
            if (ioctl(pty_master, TIOCSWINSZ, &ws) < 0) {
                client_reply(c, "error resize: %s\n", strerror(errno));
                return;
            }
        }
        client_reply(c, "ok\n");
    } else if (strcmp(cmd, "start") == 0) {
        if (!opt.exec_process) {
            client_reply(c, "error not an exec\n");
        } else if (started) {
            client_reply(c, "error already started\n");
        } else {
            char msg[1024];
            int pid = do_start(msg, sizeof msg);
            if (pid > 0)
                client_reply(c, "ok %d\n", pid);
            else
                client_reply(c, "error %s\n", msg);
        }
    } else if (strcmp(cmd, "wait") == 0) {
        c->state = C_WAIT;
    } else if (strcmp(cmd, "ping") == 0) {
        client_reply(c, "ok\n");
    } else {
        client_reply(c, "error unknown command\n");
    }
}

static void client_read(struct client *c)
{
    char buf[CLIENT_READ];
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            client_close(c);
        return;
    }
    if (c->state == C_CMD) {
        if (n == 0) {
            client_close(c);
            return;
        }
        char *nl = memchr(buf, '\n', (size_t)n);
        size_t take = nl ? (size_t)(nl - buf) : (size_t)n;
        if (c->cmd_len + take >= CMD_MAX) {
            client_reply(c, "error command too long\n");
            return;
        }
        memcpy(c->cmd + c->cmd_len, buf, take);
        c->cmd_len += take;
        c->cmd[c->cmd_len] = 0;
        if (nl)
            handle_command(c, nl + 1, (size_t)n - take - 1);
        return;
    }
    if (n == 0) {
        /* half-close: the client sends nothing more but still reads output */
        c->in_eof = 1;
        if (c->state == C_ATTACH && c->want_in && c->close_stdin) {
            stdin_close_pending = 1;
            stdin_flush();
        }
        return;
    }
    if (c->state == C_ATTACH && c->want_in)
        stdin_push(buf, (size_t)n);
}

static void accept_client(void)
{
    int fd = accept4(attach_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (clients[i].state == C_FREE) {
            clients[i].fd = fd;
            clients[i].state = C_CMD;
            return;
        }
    }
    send(fd, "error too many clients\n", 23, MSG_NOSIGNAL);
    close(fd);
}

/* ------------------------------------------------------------- exit status */

static void record_exit(int status)
{
    exited = 1;
    exit_code = exit_code_of(status);
    now_rfc3339(finished_at, sizeof finished_at);
}

static void reap(void)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (main_pid > 0 && pid == main_pid && !exited)
            record_exit(st);
        else if (main_pid <= 0 && n_early < (int)(sizeof early / sizeof early[0]))
            early[n_early].pid = pid, early[n_early++].status = st;
    }
}

static void set_main_pid(pid_t pid)
{
    main_pid = pid;
    for (int i = 0; i < n_early; i++) {
        if (early[i].pid == pid)
            record_exit(early[i].status);
    }
    n_early = 0;
}

static void write_exit_file(void)
{
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%d %s\n", exit_code, finished_at);
    int fd = open("exit.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    write_all(fd, buf, (size_t)n);
    fsync(fd);
    close(fd);
    rename("exit.tmp", "exit");
    int dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

static void remove_sockets(void)
{
    unlink(attach_rel ? "attach.sock" : attach_path);
    if (opt.tty)
        unlink(console_rel ? "console.sock" : console_path);
    unlink("shim.pid");
}

/* The process has exited and its output is drained: record, tell everyone, leave. */
static void finish(void)
{
    for (int s = 0; s < 2; s++)
        log_flush(s);
    xclose(&log_fd);
    write_exit_file();
    remove_sockets();
    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &clients[i];
        if (c->state == C_WAIT) {
            client_reply(c, "exit %d %s\n", exit_code, finished_at);
        } else if (c->state == C_ATTACH && c->olen > 0) {
            /* give a live client a moment to take the end of the output */
            int fl = fcntl(c->fd, F_GETFL);
            fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
            struct timeval tv = {.tv_sec = 1};
            setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            client_flush(c);
            client_close(c);
        } else if (c->state != C_FREE) {
            client_close(c);
        }
    }
    exit(0);
}

/* --------------------------------------------------------------- exec mode */

static int do_start(char *err, size_t errn)
{
    started = 1;
    int pid = run_runtime(1, err, errn);
    if (pid < 0) {
        /* the process never ran: 127 if it was not found, else 126, as a shell would say */
        record_exit(0);
        exit_code = strstr(err, "not found") || strstr(err, "no such file") ? 127 : 126;
        return -1;
    }
    set_main_pid(pid);
    reap();
    return pid;
}

/* -------------------------------------------------------------- event loop */

static void read_output(int s)
{
    static char buf[32768];
    ssize_t n = read(out_fd[s], buf, sizeof buf);
    if (n > 0) {
        log_data(s, buf, (size_t)n);
        broadcast(s, buf, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* EOF, or EIO on a pty master whose slave side is gone */
    log_flush(s);
    if (out_fd[s] != pty_master)
        close(out_fd[s]);
    out_fd[s] = -1;
}

static void loop(void)
{
    struct pollfd pfd[4 + MAX_CLIENTS];
    int cidx[4 + MAX_CLIENTS];
    long long exit_seen = 0;
    for (;;) {
        if (exited && started && !exit_seen)
            exit_seen = mono_ms();
        if (exit_seen && out_fd[0] < 0 && out_fd[1] < 0)
            finish();
        if (exit_seen && ilen > 0)
            ilen = 0; /* nobody is left to read stdin */

        int n = 0;
        pfd[n].fd = sig_fd, pfd[n].events = POLLIN, cidx[n++] = -1;
        pfd[n].fd = attach_fd, pfd[n].events = POLLIN, cidx[n++] = -2;
        for (int s = 0; s < 2; s++) {
            if (out_fd[s] >= 0)
                pfd[n].fd = out_fd[s], pfd[n].events = POLLIN, cidx[n++] = -3 - s;
        }
        if (in_fd >= 0 && ilen > 0)
            pfd[n].fd = in_fd, pfd[n].events = POLLOUT, cidx[n++] = -5;
        for (int i = 0; i < MAX_CLIENTS; i++) {
            struct client *c = &clients[i];
            if (c->state == C_FREE)
                continue;
            short ev = 0;
            if (!c->in_eof && (c->state != C_ATTACH || !c->want_in || ilen < STDIN_BUF_MAX))
                ev |= POLLIN;
            if (c->olen > 0)
                ev |= POLLOUT;
            pfd[n].fd = c->fd, pfd[n].events = ev, cidx[n++] = i;
        }

        int timeout = -1;
        if (exit_seen) {
            long long left = exit_seen + DRAIN_MAX_MS - mono_ms();
            timeout = left < DRAIN_IDLE_MS ? (int)(left > 0 ? left : 0) : DRAIN_IDLE_MS;
        }
        int r = poll(pfd, (nfds_t)n, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            finish();
        }
        if (r == 0 && exit_seen)
            finish(); /* nothing more arrived: the output is drained */

        for (int k = 0; k < n; k++) {
            short re = pfd[k].revents;
            if (!re)
                continue;
            int ci = cidx[k];
            if (ci == -1) {
                struct signalfd_siginfo si;
                while (read(sig_fd, &si, sizeof si) == sizeof si) {
                }
                reap();
            } else if (ci == -2) {
                accept_client();
            } else if (ci == -3 || ci == -4) {
                int s = -3 - ci;
                if (out_fd[s] >= 0)
                    read_output(s);
            } else if (ci == -5) {
                stdin_flush();
            } else {
                struct client *c = &clients[ci];
                if (c->state == C_FREE)
                    continue;
                if (re & (POLLIN | POLLHUP | POLLERR)) {
                    if (!c->in_eof)
                        client_read(c);
                    else if (re & (POLLHUP | POLLERR))
                        client_close(c); /* fully gone */
                }
                if (c->state != C_FREE && (re & POLLOUT))
                    client_flush(c);
            }
        }
        stdin_flush();
    }
}

/* ------------------------------------------------------------------- setup */

/* Listen on STATE/name; long state dirs fall back to a name relative to the cwd (STATE). */
static int listen_unix(const char *name, char *path, int *rel)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(path, PATH_MAX, "%s/%s", opt.state_dir, name);
    *rel = strlen(path) >= sizeof sa.sun_path;
    const char *p = *rel ? name : path;
    strncpy(sa.sun_path, p, sizeof sa.sun_path - 1);
    unlink(p);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void sync_reply(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    if (sync_fd >= 0) {
        write_all(sync_fd, buf, (size_t)n);
        xclose(&sync_fd);
    }
}

/* Setup failed: undo what was done, report, and leave. */
static void fail(int created, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (created)
        delete_container();
    /* reap whatever the runtime left behind to us */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    remove_sockets();
    unlink("pid");
    sync_reply("error %s", msg);
    exit(1);
}

static int make_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC);
}

static void setup_stdio(void)
{
    int p[2];
    if (opt.tty) {
        /* the runtime's own stdio: nothing useful goes there, errors go to --log */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        child_fds[0] = null;
        child_fds[1] = fcntl(null, F_DUPFD_CLOEXEC, 3);
        child_fds[2] = fcntl(null, F_DUPFD_CLOEXEC, 3);
        return;
    }
    if (opt.open_stdin) {
        if (make_pipe(p) < 0)
            fail(0, "pipe: %s", strerror(errno));
        child_fds[0] = p[0];
        in_fd = p[1];
        set_nonblock(in_fd);
    } else {
        child_fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    for (int s = 0; s < 2; s++) {
        if (make_pipe(p) < 0)
            fail(0, "pipe: %s", strerror(errno));
        out_fd[s] = p[0];
        child_fds[1 + s] = p[1];
        set_nonblock(out_fd[s]);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: dockling-shim --runtime PATH --runtime-root DIR --id ID --bundle DIR "
                    "--state-dir DIR [--tty] [--stdin] [--log PATH [--log-max-size BYTES] "
                    "[--log-max-files N]] [--exec PROCESS_JSON]\n");
    printf("error invalid arguments\n");
    exit(1);
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"runtime", required_argument, 0, 'r'},      {"runtime-root", required_argument, 0, 'R'},
        {"id", required_argument, 0, 'i'},           {"bundle", required_argument, 0, 'b'},
        {"state-dir", required_argument, 0, 's'},    {"tty", no_argument, 0, 't'},
        {"stdin", no_argument, 0, 'I'},              {"log", required_argument, 0, 'l'},
        {"log-max-size", required_argument, 0, 'm'}, {"log-max-files", required_argument, 0, 'n'},
        {"exec", required_argument, 0, 'e'},         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r': opt.runtime = optarg; break;
        case 'R': opt.runtime_root = optarg; break;
        case 'i': opt.id = optarg; break;
        case 'b': opt.bundle = optarg; break;
        case 's': opt.state_dir = optarg; break;
        case 't': opt.tty = 1; break;
        case 'I': opt.open_stdin = 1; break;
        case 'l': opt.log_path = optarg; break;
        case 'm': opt.log_max_size = atoll(optarg); break;
        case 'n': opt.log_max_files = atoi(optarg); break;
        case 'e': opt.exec_process = optarg; break;
        default: usage();
        }
    }
    if (!opt.runtime || !opt.runtime_root || !opt.id || !opt.state_dir ||
        (!opt.bundle && !opt.exec_process) || optind != argc)
        usage();
    if (opt.exec_process)
        opt.log_path = NULL; /* Docker keeps no log of exec output */
    opt.runtime = absolute(opt.runtime);
    opt.runtime_root = absolute(opt.runtime_root);
    opt.bundle = absolute(opt.bundle);
    opt.state_dir = absolute(opt.state_dir);
    opt.log_path = absolute(opt.log_path);
    opt.exec_process = absolute(opt.exec_process);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    if (chdir(opt.state_dir) < 0) {
        printf("error state dir %s: %s\n", opt.state_dir, strerror(errno));
        return 1;
    }

    int sp[2];
    if (pipe2(sp, O_CLOEXEC) < 0) {
        printf("error pipe: %s\n", strerror(errno));
        return 1;
    }
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        printf("error fork: %s\n", strerror(errno));
        return 1;
    }
    if (child > 0) {
        /* the launcher: relay the one line of the daemonised shim */
        close(sp[1]);
        char buf[2048];
        size_t len = 0;
        ssize_t r;
        while (len < sizeof buf - 1 && (r = read(sp[0], buf + len, sizeof buf - 1 - len)) != 0) {
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            len += (size_t)r;
        }
        buf[len] = 0;
        waitpid(child, NULL, WNOHANG);
        if (len == 0) {
            printf("error the shim exited during setup\n");
            return 1;
        }
        fputs(buf, stdout);
        return strncmp(buf, "ok ", 3) == 0 ? 0 : 1;
    }

    /* the shim: own session, subreaper of the container, quiet stdio */
    close(sp[0]);
    sync_fd = sp[1];
    setsid();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0), dup2(null, 1), dup2(null, 2);
        if (null > 2)
            close(null);
    }
    /* big client queues are mmapped, so freeing one returns its memory */
    mallopt(M_MMAP_THRESHOLD, CLIENT_BUF_KEEP);
    /* ignored here; every child we spawn gets the default back */
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < MAX_CLIENTS; i++)
        clients[i].fd = -1;

    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    sig_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sig_fd < 0)
        fail(0, "signalfd: %s", strerror(errno));

    char buf[32];
    int fd = open("shim.pid", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        int n = snprintf(buf, sizeof buf, "%d\n", getpid());
        write_all(fd, buf, (size_t)n);
        close(fd);
    }

    attach_fd = listen_unix("attach.sock", attach_path, &attach_rel);
    if (attach_fd < 0)
        fail(0, "listen on %s/attach.sock: %s", opt.state_dir, strerror(errno));
    if (opt.tty) {
        console_fd = listen_unix("console.sock", console_path, &console_rel);
        if (console_fd < 0)
            fail(0, "listen on %s/console.sock: %s", opt.state_dir, strerror(errno));
    }
    setup_stdio();
    if (opt.log_path) {
        log_open();
        if (log_fd < 0)
            fail(0, "open log %s: %s", opt.log_path, strerror(errno));
    }

    if (opt.exec_process) {
        sync_reply("ok %d", getpid());
    } else {
        char err[1024];
        int pid = run_runtime(0, err, sizeof err);
        if (pid < 0)
            fail(1, "%s", err);
        started = 1;
        set_main_pid(pid);
        reap();
        sync_reply("ok %d", pid);
    }
    loop();
    return 0;
}
