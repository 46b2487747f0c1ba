/*
 * shoal-shim: holds one task's process outside shoald, as containerd-shim does for dockerd.
 *
 * shim run -s STATE [-n] [-h HOST] [-u UID] [-g GID] [-G G1,G2] [-w DIR] [-c PROCS]... [-k HOOK]
 *          [-b SRC:DST]... [-m MAXLOG] -- ARGV...
 *   Starts ARGV with the shim's own environment and detaches a supervisor (own session, parent init)
 *   that writes the output to STATE/log (CRI format: "<rfc3339nano> stdout|stderr F|P <line>"),
 *   then the exit code to STATE/exit. Prints "ok <pid>" or "error <message>" on stdout and exits.
 *   -n: new pid, mount, UTS, IPC and network namespaces; the workload is pid 1 inside, as in Docker
 *       (so a workload without a SIGTERM handler ignores SIGTERM and waits out the grace period).
 *       HOOK runs in the host namespaces as `sh -c HOOK sh <pid>` before the workload starts.
 *   -I: (with -n) a tiny init is pid 1 instead, as `docker run --init`: it forwards signals to the
 *       workload, reaps orphans and exits with the workload's code.
 *   -c: a cgroup.procs file the workload joins.   -b: bind mount inside the mount namespace.
 *   -T: the workload gets a new terminal (pty) as its controlling tty and stdio; its output is
 *       logged as stdout.
 *   -x KIND,MODE,SRC,DST: (with -n) a --mount in the task's mount namespace: KIND bind (SRC on DST) or
 *       tmpfs (SRC: its mount options), MODE ro or rw. DST must exist.
 *   -R: (with -n) the root mount read-only in the task's mount namespace, as --read-only.
 *   -r NAME=SOFT:HARD: a resource limit (setrlimit) for the workload, as --ulimit (nofile, nproc, ...).
 *   -P PIDFILE: ARGV is an OCI runtime's `run --detach --pid-file PIDFILE ...` (conmon's role): the
 *       supervisor is a child subreaper, waits for the runtime to exit, then supervises the process
 *       named in PIDFILE (the container's pid 1, re-parented to it) as the workload.
 *
 * shim exec -t PID [-n] [-T] [-u UID] [-g GID] [-G G1,G2] [-w DIR] [-c PROCS]... -- ARGV...
 *   Runs ARGV beside task PID (in its namespaces with -n), passing stdio through; exits with its code.
 *   -T: stdin is a terminal the command takes as its controlling tty.
 *
 * Exit codes read as a shell's: 128+N when killed by signal N; 127 command not found, 126 not runnable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LIST 32
#define LINE_MAX_BYTES 16384

struct config {
    const char *state;
    int namespaces;
    const char *hostname;
    long uid, gid;
    gid_t groups[MAX_LIST];
    int ngroups, set_groups;
    const char *workdir;
    const char *cgroups[MAX_LIST];
    int ncgroups;
    const char *hook;
    const char *binds[MAX_LIST];
    int nbinds;
    long maxlog;
    long target;
    int tty;
    int init;
    const char *pidfile;
    const char *rlimits[MAX_LIST];
    int nrlimits;
    int readonly_root;
    const char *mounts[MAX_LIST];
    int nmounts;
    char ttyname[64];
    char **argv;
};

/* ---------------------------------------------------------------- small helpers */

static void fail_to(int fd, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n > 0 && write(fd, msg, (size_t)(n < (int)sizeof msg ? n : (int)sizeof msg - 1)) < 0) {
        /* nowhere left to report */
    }
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n < 0 ? -1 : 0;
}

/* Write STATE/name atomically (tmp + rename), so readers never see half a file. */
static void write_state(const char *state, const char *name, const char *text) {
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", state, name);
    snprintf(dst, sizeof dst, "%s/%s", state, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ssize_t n = write(fd, text, strlen(text));
    fsync(fd);
    close(fd);
    if (n >= 0) rename(tmp, dst);
}

static void now_rfc3339(char *out, size_t size) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%09ldZ", ts.tv_nsec);
}

/* Field 22 of /proc/PID/stat: start time in clock ticks since boot; with the pid it names a process
 * uniquely, so a reused pid is not mistaken for the task. */
static unsigned long long start_time(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    int field = 2;
    for (; *p && field < 22; p++)
        if (*p == ' ') field++;
    return strtoull(p, NULL, 10);
}

static int exit_code(int status) {
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 255;
}

static int parse_groups(struct config *c, const char *text) {
    char *copy = strdup(text), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (c->ngroups >= MAX_LIST) return -1;
        c->groups[c->ngroups++] = (gid_t)strtol(t, NULL, 10);
    }
    c->set_groups = 1;
    free(copy);
    return 0;
}

static int parse_args(int argc, char **argv, struct config *c, int exec_mode) {
    memset(c, 0, sizeof *c);
    c->uid = c->gid = -1;
    c->maxlog = 10L * 1024 * 1024;
    int opt;
    const char *spec = exec_mode ? "+t:nTu:g:G:w:c:" : "+s:nIRTh:u:g:G:w:c:k:b:m:P:r:x:";
    while ((opt = getopt(argc, argv, spec)) != -1) {
        switch (opt) {
        case 's': c->state = optarg; break;
        case 'n': c->namespaces = 1; break;
        case 'h': c->hostname = optarg; break;
        case 'u': c->uid = strtol(optarg, NULL, 10); break;
        case 'g': c->gid = strtol(optarg, NULL, 10); break;
        case 'G': if (parse_groups(c, optarg)) return -1; break;
        case 'w': c->workdir = optarg; break;
        case 'c': if (c->ncgroups >= MAX_LIST) return -1; c->cgroups[c->ncgroups++] = optarg; break;
        case 'k': c->hook = optarg; break;
        case 'b': if (c->nbinds >= MAX_LIST) return -1; c->binds[c->nbinds++] = optarg; break;
        case 'm': c->maxlog = strtol(optarg, NULL, 10); break;
        case 't': c->target = strtol(optarg, NULL, 10); break;
        case 'T': c->tty = 1; break;
        case 'I': c->init = 1; break;
        case 'R': c->readonly_root = 1; break;
        case 'x': if (c->nmounts >= MAX_LIST) return -1; c->mounts[c->nmounts++] = optarg; break;
        case 'P': c->pidfile = optarg; break;
        case 'r': if (c->nrlimits >= MAX_LIST) return -1; c->rlimits[c->nrlimits++] = optarg; break;
        default: return -1;
        }
    }
    if (optind >= argc) return -1;
    c->argv = argv + optind;
    if (exec_mode ? c->target <= 0 : c->state == NULL) return -1;
    return 0;
}

/* ---------------------------------------------------------------- becoming the workload */

static int join_cgroups(const struct config *c, int errfd) {
    for (int i = 0; i < c->ncgroups; i++) {
        if (write_file(c->cgroups[i], "0") < 0) {
            fail_to(errfd, "join cgroup %s: %s", c->cgroups[i], strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* New session with the terminal `name` (or, if NULL, stdin) as controlling tty. */
static int take_terminal(const char *name, int errfd) {
    setsid();
    if (name) {
        int fd = open(name, O_RDWR);
        if (fd < 0) {
            fail_to(errfd, "open terminal %s: %s", name, strerror(errno));
            return -1;
        }
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2) close(fd);
    }
    if (ioctl(0, TIOCSCTTY, 0) < 0) {
        fail_to(errfd, "set controlling terminal: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static const struct { const char *name; int resource; } RLIMITS[] = {
    {"core", RLIMIT_CORE}, {"cpu", RLIMIT_CPU}, {"data", RLIMIT_DATA}, {"fsize", RLIMIT_FSIZE},
    {"locks", RLIMIT_LOCKS}, {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE},
    {"nice", RLIMIT_NICE}, {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"rss", RLIMIT_RSS},
    {"rtprio", RLIMIT_RTPRIO}, {"rttime", RLIMIT_RTTIME}, {"sigpending", RLIMIT_SIGPENDING},
    {"stack", RLIMIT_STACK},
};

/* -r NAME=SOFT:HARD entries, applied before the privileges drop (raising a hard limit needs root). */
static int apply_rlimits(const struct config *c, int errfd) {
    for (int i = 0; i < c->nrlimits; i++) {
        char name[32];
        unsigned long long soft, hard;
        if (sscanf(c->rlimits[i], "%31[a-z]=%llu:%llu", name, &soft, &hard) != 3) {
            fail_to(errfd, "bad ulimit %s", c->rlimits[i]);
            return -1;
        }
        int found = -1;
        for (size_t j = 0; j < sizeof RLIMITS / sizeof RLIMITS[0]; j++)
            if (strcmp(RLIMITS[j].name, name) == 0) found = RLIMITS[j].resource;
        struct rlimit rl = {.rlim_cur = (rlim_t)soft, .rlim_max = (rlim_t)hard};
        if (found < 0 || setrlimit(found, &rl) < 0) {
            fail_to(errfd, "setrlimit %s: %s", name, found < 0 ? "unknown limit" : strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* One -x entry: "bind,ro,SRC,DST" or "tmpfs,rw,OPTIONS,DST" (OPTIONS with ';' for ','). */
static int task_mount(const char *spec, int errfd) {
    char kind[16], mode[4], src[2048], dst[2048];
    if (sscanf(spec, "%15[^,],%3[^,],%2047[^,],%2047s", kind, mode, src, dst) != 4) {
        fail_to(errfd, "bad mount %s", spec);
        return -1;
    }
    int ro = strcmp(mode, "ro") == 0;
    if (strcmp(kind, "tmpfs") == 0) {
        for (char *p = src; *p; p++)
            if (*p == ';') *p = ',';
        unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (ro ? MS_RDONLY : 0);
        if (mount("tmpfs", dst, "tmpfs", flags, strcmp(src, "-") ? src : NULL) < 0) {
            fail_to(errfd, "mount tmpfs on %s: %s", dst, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0 ||
        (ro && mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)) {
        fail_to(errfd, "bind %s on %s: %s", src, dst, strerror(errno));
        return -1;
    }
    return 0;
}

/* chdir, drop privileges, exec. Only returns on failure, having reported it on errfd. */
static int exec_workload(const struct config *c, int errfd) {
    if (apply_rlimits(c, errfd) < 0) return 126;
    if (c->workdir && chdir(c->workdir) < 0) {
        fail_to(errfd, "chdir to %s: %s", c->workdir, strerror(errno));
        return 126;
    }
    if (c->set_groups && setgroups((size_t)c->ngroups, c->groups) < 0) {
        fail_to(errfd, "setgroups: %s", strerror(errno));
        return 126;
    }
    if (c->gid >= 0 && setgid((gid_t)c->gid) < 0) {
        fail_to(errfd, "setgid %ld: %s", c->gid, strerror(errno));
        return 126;
    }
    if (c->uid >= 0 && setuid((uid_t)c->uid) < 0) {
        fail_to(errfd, "setuid %ld: %s", c->uid, strerror(errno));
        return 126;
    }
    execvp(c->argv[0], c->argv);
    int err = errno;
    if (err == ENOENT && !strchr(c->argv[0], '/'))
        fail_to(errfd, "exec: \"%s\": executable file not found in $PATH", c->argv[0]);
    else
        fail_to(errfd, "exec: \"%s\": %s", c->argv[0], strerror(err));
    return err == ENOENT ? 127 : 126;
}

static void reset_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* ---------------------------------------------------------------- the init inside the namespaces */

static int run_init(const struct config *c, int gofd, int errfd, int outfd, int errout) {
    char go;
    if (read(gofd, &go, 1) != 1) _exit(1); /* the supervisor gave up (hook failed) */
    close(gofd);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        fail_to(errfd, "make mounts private: %s", strerror(errno));
        return 126;
    }
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
        fail_to(errfd, "mount /proc: %s", strerror(errno));
        return 126;
    }
    for (int i = 0; i < c->nbinds; i++) {
        char src[4096];
        snprintf(src, sizeof src, "%s", c->binds[i]);
        char *dst = strchr(src, ':');
        if (!dst) continue;
        *dst++ = 0;
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0) {
            fail_to(errfd, "bind %s on %s: %s", src, dst, strerror(errno));
            return 126;
        }
    }
    for (int i = 0; i < c->nmounts; i++)
        if (task_mount(c->mounts[i], errfd) < 0) return 126;
    if (c->readonly_root && mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
        fail_to(errfd, "make the root read-only: %s", strerror(errno));
        return 126;
    }
    if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0) {
        fail_to(errfd, "sethostname: %s", strerror(errno));
        return 126;
    }
    if (join_cgroups(c, errfd) < 0) return 126;
    if (!c->init) { /* the workload itself becomes pid 1 */
        reset_signals();
        dup2(outfd, 1);
        dup2(errout, 2);
        if (c->tty && take_terminal(c->ttyname, errfd) < 0) return 126;
        return exec_workload(c, errfd);
    }

    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    pid_t child = fork();
    if (child < 0) {
        fail_to(errfd, "fork: %s", strerror(errno));
        return 126;
    }
    if (child == 0) {
        reset_signals();
        dup2(outfd, 1);
        dup2(errout, 2);
        if (c->tty && take_terminal(c->ttyname, errfd) < 0) _exit(126);
        _exit(exec_workload(c, errfd));
    }
    close(errfd);
    close(outfd);
    close(errout);
    /* Forward what the host sends us; reap everything; leave with the workload's code. */
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0) continue;
        if (sig == SIGCHLD) {
            int status;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                if (pid == child) return exit_code(status);
        } else {
            kill(child, sig);
        }
    }
}

/* ---------------------------------------------------------------- the supervisor: logs and exit */

struct stream {
    int fd;
    const char *name;
    char buf[LINE_MAX_BYTES];
    size_t len;
};

struct logger {
    const char *state;
    char path[4096];
    int fd;
    long size, max;
};

static void log_open(struct logger *l) {
    snprintf(l->path, sizeof l->path, "%s/log", l->state);
    l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat st;
    l->size = (l->fd >= 0 && fstat(l->fd, &st) == 0) ? (long)st.st_size : 0;
}

static void log_record(struct logger *l, const char *stream, char tag, const char *data, size_t len) {
    if (l->fd < 0) return;
    if (l->max > 0 && l->size >= l->max) { /* keep one older file, as docker's json-file max-file=2 */
        char old[4200];
        snprintf(old, sizeof old, "%s.1", l->path);
        rename(l->path, old);
        close(l->fd);
        log_open(l);
        if (l->fd < 0) return;
    }
    char head[96];
    now_rfc3339(head, sizeof head);
    size_t n = strlen(head);
    snprintf(head + n, sizeof head - n, " %s %c ", stream, tag);
    n = strlen(head);
    char *rec = malloc(n + len + 1);
    if (!rec) return;
    memcpy(rec, head, n);
    memcpy(rec + n, data, len);
    rec[n + len] = '\n';
    ssize_t w = write(l->fd, rec, n + len + 1);
    if (w > 0) l->size += w;
    free(rec);
}

/* Read what is available; emit each complete line, a full buffer as a partial record. 0 at EOF. */
static int pump(struct stream *s, struct logger *l) {
    ssize_t n = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
    if (n <= 0) {
        if (s->len) log_record(l, s->name, 'F', s->buf, s->len);
        s->len = 0;
        close(s->fd);
        s->fd = -1;
        return 0;
    }
    s->len += (size_t)n;
    size_t start = 0;
    for (size_t i = 0; i < s->len; i++) {
        if (s->buf[i] == '\n') {
            log_record(l, s->name, 'F', s->buf + start, i - start);
            start = i + 1;
        }
    }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
    if (s->len == sizeof s->buf) {
        log_record(l, s->name, 'P', s->buf, s->len);
        s->len = 0;
    }
    return 1;
}

/* Runs the hook with its output in STATE/hook.log, so a failure can say why. */
static int run_hook(const char *hook, pid_t pid, const char *state) {
    char pidtext[32], logpath[4096];
    snprintf(pidtext, sizeof pidtext, "%d", (int)pid);
    snprintf(logpath, sizeof logpath, "%s/hook.log", state);
    pid_t h = fork();
    if (h < 0) return -1;
    if (h == 0) {
        reset_signals();
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            if (fd > 2) close(fd);
        }
        execl("/bin/sh", "sh", "-c", hook, "sh", pidtext, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(h, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static pid_t clone_into_namespaces(void) {
    long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | SIGCHLD;
    /* raw clone with no new stack behaves as fork() with namespace flags */
    return (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
}

/* Runs in the detached supervisor. `report` is the launcher's pipe for "ok PID" / "error MSG". */
static int supervise(const struct config *c, int report) {
    char line[2048], text[256];
    snprintf(text, sizeof text, "%d %llu\n", (int)getpid(), start_time(getpid()));
    write_state(c->state, "supervisor", text);

    int out[2], err[2], errpipe[2], gopipe[2];
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(errpipe, O_CLOEXEC) ||
        pipe2(gopipe, O_CLOEXEC)) {
        fail_to(report, "error pipe: %s\n", strerror(errno));
        return 1;
    }
    int master = -1;
    if (c->tty) { /* the workload opens the terminal by name, so only it holds the slave side */
        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
            ptsname_r(master, ((struct config *)c)->ttyname, sizeof c->ttyname) != 0) {
            fail_to(report, "error terminal: %s\n", strerror(errno));
            return 1;
        }
    }
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    if (c->pidfile && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        fail_to(report, "error subreaper: %s\n", strerror(errno));
        return 1;
    }

    pid_t child = c->namespaces ? clone_into_namespaces() : fork();
    if (child < 0) {
        fail_to(report, "error %s: %s\n", c->namespaces ? "create namespaces" : "fork", strerror(errno));
        return 1;
    }
    if (child == 0) {
        close(out[0]);
        close(err[0]);
        close(errpipe[0]);
        close(gopipe[1]);
        close(report);
        if (c->namespaces) _exit(run_init(c, gopipe[0], errpipe[1], out[1], err[1]));
        reset_signals();
        if (!c->tty) setpgid(0, 0); /* its own group, so a kill reaches what it forks (-T: setsid) */
        if (join_cgroups(c, errpipe[1]) < 0) _exit(126);
        dup2(out[1], 1);
        dup2(err[1], 2);
        if (c->tty && take_terminal(c->ttyname, errpipe[1]) < 0) _exit(126);
        _exit(exec_workload(c, errpipe[1]));
    }
    unsigned long long started = start_time(child);
    close(out[1]);
    close(err[1]);
    close(errpipe[1]);
    close(gopipe[0]);

    /* Only the init reads the go byte; a plain workload may have exec'd (closing its copy) already. */
    int hook_failed = c->namespaces && c->hook && run_hook(c->hook, child, c->state) < 0;
    if (c->namespaces && !hook_failed && write(gopipe[1], "g", 1) != 1) hook_failed = 1;
    close(gopipe[1]);

    /* EOF on errpipe without data: the workload's exec succeeded. */
    size_t got = 0;
    if (hook_failed) {
        got = (size_t)snprintf(line, sizeof line, "network setup failed: ");
        char logpath[4096];
        snprintf(logpath, sizeof logpath, "%s/hook.log", c->state);
        int fd = open(logpath, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, line + got, sizeof line - 1 - got) : 0;
        if (fd >= 0) close(fd);
        got += n > 0 ? (size_t)n : 0;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == ' ')) got--;
        for (size_t i = 0; i < got; i++) /* one line: the launcher reports a single line */
            if (line[i] == '\n') line[i] = ' ';
        kill(child, SIGKILL);
    } else {
        ssize_t n;
        while ((n = read(errpipe[0], line + got, sizeof line - 1 - got)) != 0) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) break;
            got += (size_t)n;
        }
    }
    close(errpipe[0]);
    line[got] = 0;
    if (got == 0 && c->pidfile) { /* the runtime started the container and left; adopt its pid 1 */
        int rs;
        while (waitpid(child, &rs, 0) < 0 && errno == EINTR) {
        }
        long workload = 0;
        FILE *pf = fopen(c->pidfile, "r");
        if (pf) {
            if (fscanf(pf, "%ld", &workload) != 1) workload = 0;
            fclose(pf);
        }
        if (!WIFEXITED(rs) || WEXITSTATUS(rs) != 0 || workload <= 0) {
            got = (size_t)snprintf(line, sizeof line, "OCI runtime exited with %d", exit_code(rs));
        } else {
            child = (pid_t)workload;
            started = start_time(child);
        }
    }

    char stamp[64];
    now_rfc3339(stamp, sizeof stamp);
    if (got == 0) {
        snprintf(text, sizeof text, "%d %llu\n%s\n", (int)child, started, stamp);
        write_state(c->state, "pid", text);
        fail_to(report, "ok %d\n", (int)child);
    } else {
        write_state(c->state, "error", line);
        fail_to(report, "error %s\n", line);
    }
    close(report);

    struct logger lg = {.state = c->state, .max = c->maxlog};
    log_open(&lg);
    struct stream streams[2] = {{.fd = out[0], .name = "stdout"}, {.fd = err[0], .name = "stderr"}};
    if (master >= 0) { /* with a terminal everything the workload writes arrives on it */
        close(out[0]);
        streams[0].fd = master;
    }
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    int status = 0, exited = 0;
    for (;;) {
        struct pollfd fds[3];
        int nfds = 0, idx[2] = {-1, -1};
        for (int i = 0; i < 2; i++)
            if (streams[i].fd >= 0) {
                idx[i] = nfds;
                fds[nfds++] = (struct pollfd){.fd = streams[i].fd, .events = POLLIN};
            }
        int sig_at = -1;
        if (!exited) {
            sig_at = nfds;
            fds[nfds++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        }
        if (nfds == 0) break;
        /* Once the workload is gone, stop when its output goes quiet (a forked daemon may hold it). */
        int ready = poll(fds, (nfds_t)nfds, exited ? 200 : -1);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) break;
        for (int i = 0; i < 2; i++)
            if (idx[i] >= 0 && fds[idx[i]].revents) pump(&streams[i], &lg);
        if (sig_at >= 0 && fds[sig_at].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0) {
            }
            pid_t p;
            int st;
            while ((p = waitpid(-1, &st, WNOHANG)) > 0)
                if (p == child) {
                    status = st;
                    exited = 1;
                }
        }
    }
    if (!exited)
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
        }
    now_rfc3339(stamp, sizeof stamp);
    snprintf(text, sizeof text, "%d\n%s\n", got ? (exit_code(status) == 0 ? 127 : exit_code(status)) : exit_code(status), stamp);
    write_state(c->state, "exit", text);
    return 0;
}

static int cmd_run(int argc, char **argv) {
    struct config c;
    if (parse_args(argc, argv, &c, 0) < 0) {
        fprintf(stderr, "usage: shim run -s STATE [options] -- ARGV...\n");
        return 2;
    }
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) return 1;
    pid_t mid = fork();
    if (mid < 0) return 1;
    if (mid == 0) {
        /* Detach: new session, then fork again so the supervisor is re-parented to init. */
        close(report[0]);
        setsid();
        pid_t sup = fork();
        if (sup != 0) _exit(sup < 0 ? 1 : 0);
        signal(SIGHUP, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2) close(null);
        if (chdir("/") < 0) _exit(1);
        _exit(supervise(&c, report[1]));
    }
    close(report[1]);
    int status;
    waitpid(mid, &status, 0);
    char buf[2048];
    size_t got = 0;
    ssize_t n;
    while ((n = read(report[0], buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)n;
    if (got == 0) {
        printf("error supervisor died before reporting\n");
        return 1;
    }
    fwrite(buf, 1, got, stdout);
    return strncmp(buf, "ok ", 3) == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- exec beside a running task */

static int cmd_exec(int argc, char **argv) {
    struct config c;
    if (parse_args(argc, argv, &c, 1) < 0) {
        fprintf(stderr, "usage: shim exec -t PID [options] -- ARGV...\n");
        return 2;
    }
    if (join_cgroups(&c, 2) < 0) return 126;
    if (!c.namespaces) {
        if (c.tty && take_terminal(NULL, 2) < 0) return 126;
        exec_workload(&c, 2);
        return 126; /* as dockerd: an exec that could not start exits 126 */
    }

    static const char *kinds[] = {"ipc", "uts", "net", "pid", "mnt"};
    int fds[5];
    for (int i = 0; i < 5; i++) { /* open all first: entering mnt changes what /proc means */
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/ns/%s", c.target, kinds[i]);
        fds[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            fprintf(stderr, "open %s: %s\n", path, strerror(errno));
            return 126;
        }
    }
    for (int i = 0; i < 5; i++) {
        if (setns(fds[i], 0) < 0) {
            fprintf(stderr, "enter %s namespace: %s\n", kinds[i], strerror(errno));
            return 126;
        }
        close(fds[i]);
    }
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    pid_t child = fork(); /* joining a pid namespace takes effect for children only */
    if (child < 0) return 126;
    if (child == 0) {
        reset_signals();
        if (c.tty && take_terminal(NULL, 2) < 0) _exit(126);
        exec_workload(&c, 2);
        _exit(126);
    }
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0) continue;
        if (sig == SIGCHLD) {
            int status;
            if (waitpid(child, &status, WNOHANG) == child) return exit_code(status);
        } else {
            kill(child, sig);
        }
    }
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "exec") == 0) return cmd_exec(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "version") == 0) {
        printf("shoal-shim 1\n");
        return 0;
    }
    fprintf(stderr, "usage: shim run|exec|version ...\n");
    return 2;
}
