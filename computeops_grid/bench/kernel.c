/* cops-grid bench kernel: the workloads of `cops-grid bench runtimes`, one static binary.
 *
 * Built twice (baseline x86-64 and the host's best level) and copied into the bench image.
 * Every mode times only its own work (CLOCK_MONOTONIC) and prints one line
 *     ok MODE seconds=S checksum=C [extra=...]
 * where C is a deterministic result that the Python side recomputes independently
 * (computeops_grid/bench/workloads.py), so a wrong or skipped computation cannot pass.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LCG_A 6364136223846793005ULL
#define LCG_C 1442695040888963407ULL
#define SEQ_K 0x9E3779B97F4A7C15ULL

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t lcg(uint64_t x, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) x = x * LCG_A + LCG_C;
    return x;
}

static int done(const char *mode, double t0, uint64_t sum) {
    printf("ok %s seconds=%.6f checksum=%" PRIu64 "\n", mode, now() - t0, sum);
    return 0;
}

static int scalar(uint64_t n) {
    double t0 = now();
    return done("scalar", t0, lcg(1, n));
}

static int simd(uint64_t n, uint64_t reps) {
    uint32_t *a = malloc(n * 4), *b = malloc(n * 4), *c = calloc(n, 4);
    if (!a || !b || !c) return 3;
    for (uint64_t i = 0; i < n; i++) {
        a[i] = (uint32_t)(i * 2654435761u);
        b[i] = (uint32_t)(i ^ 0x5bd1e995u);
    }
    double t0 = now();
    for (uint64_t r = 0; r < reps; r++)
        for (uint64_t i = 0; i < n; i++) c[i] = c[i] * 3u + a[i] * b[i];
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) sum += c[i];
    return done("simd", t0, sum);
}

static int triad(uint64_t n, uint64_t reps, double s) {
    double *a = malloc(n * 8), *b = malloc(n * 8), *c = malloc(n * 8);
    if (!a || !b || !c) return 3;
    for (uint64_t i = 0; i < n; i++) {
        b[i] = (double)(i % 1000);
        c[i] = (double)(i % 7);
        a[i] = 0.0;
    }
    double t0 = now();
    for (uint64_t r = 0; r < reps; r++) {
        for (uint64_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
        double *t = a; a = b; b = t; /* the result feeds the next pass */
    }
    double sum = 0.0;
    for (uint64_t i = 0; i < n; i++) sum += b[i];
    return done("triad", t0, (uint64_t)sum);
}

static int files(const char *dir, int ndirs, int nfiles, int reps) {
    static unsigned char buf[65536];
    char path[4096];
    uint64_t sum = 0;
    double t0 = now();
    for (int r = 0; r < reps; r++)
        for (int d = 0; d < ndirs; d++)
            for (int f = 0; f < nfiles; f++) {
                snprintf(path, sizeof path, "%s/d%02d/f%03d.py", dir, d, f);
                int fd = open(path, O_RDONLY);
                if (fd < 0) { perror(path); return 4; }
                ssize_t got;
                while ((got = read(fd, buf, sizeof buf)) > 0)
                    for (ssize_t i = 0; i < got; i++) sum += buf[i];
                close(fd);
            }
    return done("files", t0, sum);
}

static int seqio(const char *dir, uint64_t mib) {
    char path[4096];
    snprintf(path, sizeof path, "%s/cops-bench-seqio.%d", dir, (int)getpid());
    uint64_t words = 131072, total = mib * words, *buf = malloc(words * 8), sum = 0;
    if (!buf) return 3;
    double t0 = now();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { perror(path); return 4; }
    for (uint64_t j = 0; j < total; j += words) {
        for (uint64_t k = 0; k < words; k++) buf[k] = (j + k) * SEQ_K;
        if (write(fd, buf, words * 8) != (ssize_t)(words * 8)) { perror("write"); return 4; }
    }
    if (fsync(fd) != 0 || close(fd) != 0) { perror("fsync"); return 4; }
    fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 4; }
    ssize_t got;
    while ((got = read(fd, buf, words * 8)) > 0)
        for (ssize_t k = 0; k < got / 8; k++) sum += buf[k];
    close(fd);
    unlink(path);
    return done("seqio", t0, sum);
}

static int procs(int nproc, uint64_t n) {
    int fds[2];
    if (pipe(fds) != 0) return 3;
    double t0 = now();
    for (int p = 0; p < nproc; p++) {
        pid_t pid = fork();
        if (pid < 0) return 3;
        if (pid == 0) {
            uint64_t x = lcg((uint64_t)p + 1, n);
            _exit(write(fds[1], &x, 8) == 8 ? 0 : 1);
        }
    }
    close(fds[1]);
    uint64_t sum = 0, x;
    int status, got = 0;
    while (read(fds[0], &x, 8) == 8) { sum += x; got++; }
    while (wait(&status) > 0) {}
    if (got != nproc) return 5;
    return done("procs", t0, sum);
}

static int alloc(uint64_t mib) {
    /* touch every page, so a memory cap (cgroup) must act on it */
    double t0 = now();
    unsigned char *p = malloc(mib << 20);
    if (!p) return 3;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < (mib << 20); i += 4096) { p[i] = (unsigned char)(i >> 12); sum += p[i]; }
    return done("alloc", t0, sum);
}

static int cpuflags(void) {
    /* cpuid as this binary sees it, then the kernel's view from /proc/cpuinfo */
    __builtin_cpu_init();
    printf("cpuid");
    if (__builtin_cpu_supports("sse4.2")) printf(" sse4_2");
    if (__builtin_cpu_supports("avx")) printf(" avx");
    if (__builtin_cpu_supports("avx2")) printf(" avx2");
    if (__builtin_cpu_supports("fma")) printf(" fma");
    if (__builtin_cpu_supports("avx512f")) printf(" avx512f");
    printf("\n");
    /* the code path this build takes: the widest vector ISA the compiler was allowed to use */
    printf("built");
#if defined(__AVX512F__)
    printf(" avx512f");
#endif
#if defined(__AVX2__)
    printf(" avx2");
#endif
#if defined(__AVX__)
    printf(" avx");
#endif
#if defined(__SSE4_2__)
    printf(" sse4_2");
#endif
#if defined(__SSE2__)
    printf(" sse2");
#endif
    printf("\n");
    FILE *f = fopen("/proc/cpuinfo", "r");
    static char line[65536];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "flags", 5) == 0) { printf("proc %s", line); break; }
    if (f) fclose(f);
    return 0;
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "scalar") && argc == 3) return scalar(strtoull(argv[2], 0, 10));
    if (!strcmp(m, "simd") && argc == 4) return simd(strtoull(argv[2], 0, 10), strtoull(argv[3], 0, 10));
    if (!strcmp(m, "triad") && argc == 5)
        return triad(strtoull(argv[2], 0, 10), strtoull(argv[3], 0, 10), atof(argv[4]));
    if (!strcmp(m, "files") && argc == 6)
        return files(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (!strcmp(m, "seqio") && argc == 4) return seqio(argv[2], strtoull(argv[3], 0, 10));
    if (!strcmp(m, "procs") && argc == 4) return procs(atoi(argv[2]), strtoull(argv[3], 0, 10));
    if (!strcmp(m, "alloc") && argc == 3) return alloc(strtoull(argv[2], 0, 10));
    if (!strcmp(m, "cpuflags")) return cpuflags();
    fprintf(stderr, "usage: kernel scalar N | simd N REPS | triad N REPS S | files DIR NDIR NFILE REPS"
                    " | seqio DIR MIB | procs P N | alloc MIB | cpuflags\n");
    return 2;
}
