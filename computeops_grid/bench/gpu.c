/* cops-grid bench GPU check: is an NVIDIA GPU usable from here, and does a kernel run on it?
 *
 * Built only where the host has an NVIDIA driver (see computeops_grid/bench/gpu.py), with a
 * plain C compiler: no CUDA toolkit or headers are needed. The driver library libcuda.so.1 is
 * opened with dlopen and driven through its C API; the kernel is PTX text that the driver
 * compiles for whatever GPU it finds.
 *
 *     gpu-check THREADS ITERS
 *
 * 1. counts the /dev/nvidia<N> device nodes this process can open (what the container shows);
 * 2. runs THREADS GPU threads, thread i doing ITERS steps of the bench LCG from state i+1;
 * 3. prints  "gpu devices=K name=NAME"  then  "ok gpu seconds=S checksum=C"  where C is the
 *    sum of the final states (mod 2^64), recomputed independently by the Python side.
 * Exit 6: no device node visible; 7: libcuda cannot be loaded; 8: a driver call failed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext, *CUmodule, *CUfunction, *CUstream;
typedef unsigned long long CUdeviceptr;

static const char PTX[] =
    ".version 6.0\n"
    ".target sm_50\n"
    ".address_size 64\n"
    ".visible .entry lcg(.param .u64 p_out, .param .u64 p_iters, .param .u32 p_n)\n"
    "{\n"
    "  .reg .pred %p<3>;\n"
    "  .reg .b32 %r<6>;\n"
    "  .reg .b64 %rd<12>;\n"
    "  ld.param.u64 %rd1, [p_out];\n"
    "  ld.param.u64 %rd2, [p_iters];\n"
    "  ld.param.u32 %r1, [p_n];\n"
    "  mov.u32 %r2, %ctaid.x;\n"
    "  mov.u32 %r3, %ntid.x;\n"
    "  mov.u32 %r4, %tid.x;\n"
    "  mad.lo.u32 %r5, %r2, %r3, %r4;\n"
    "  setp.ge.u32 %p1, %r5, %r1;\n"
    "  @%p1 bra DONE;\n"
    "  cvt.u64.u32 %rd3, %r5;\n"
    "  add.u64 %rd4, %rd3, 1;\n"
    "  mov.u64 %rd5, 0;\n"
    "  mov.u64 %rd9, 6364136223846793005;\n"
    "  mov.u64 %rd10, 1442695040888963407;\n"
    "LOOP:\n"
    "  setp.ge.u64 %p2, %rd5, %rd2;\n"
    "  @%p2 bra STORE;\n"
    "  mad.lo.u64 %rd4, %rd4, %rd9, %rd10;\n"
    "  add.u64 %rd5, %rd5, 1;\n"
    "  bra.uni LOOP;\n"
    "STORE:\n"
    "  cvta.to.global.u64 %rd6, %rd1;\n"
    "  shl.b64 %rd7, %rd3, 3;\n"
    "  add.u64 %rd8, %rd6, %rd7;\n"
    "  st.global.u64 [%rd8], %rd4;\n"
    "DONE:\n"
    "  ret;\n"
    "}\n";

static struct {
    CUresult (*init)(unsigned);
    CUresult (*count)(int *);
    CUresult (*get)(CUdevice *, int);
    CUresult (*name)(char *, int, CUdevice);
    CUresult (*ctx_create)(CUcontext *, unsigned, CUdevice);
    CUresult (*ctx_destroy)(CUcontext);
    CUresult (*load)(CUmodule *, const void *);
    CUresult (*function)(CUfunction *, CUmodule, const char *);
    CUresult (*alloc)(CUdeviceptr *, size_t);
    CUresult (*dtoh)(void *, CUdeviceptr, size_t);
    CUresult (*launch)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                       CUstream, void **, void **);
    CUresult (*sync)(void);
    CUresult (*error)(CUresult, const char **);
} cu;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int visible_devices(void) {
    DIR *dev = opendir("/dev");
    struct dirent *e;
    int n = 0;
    while (dev && (e = readdir(dev)) != NULL) {
        const char *s = e->d_name;
        if (strncmp(s, "nvidia", 6) != 0 || s[6] < '0' || s[6] > '9') continue;
        char path[300];
        snprintf(path, sizeof path, "/dev/%s", s);
        int fd = open(path, O_RDWR);
        if (fd >= 0) { n++; close(fd); }
        else perror(path);
    }
    if (dev) closedir(dev);
    return n;
}

static int check(CUresult rc, const char *what) {
    if (rc == 0) return 0;
    const char *text = "unknown error";
    if (cu.error) cu.error(rc, &text);
    fprintf(stderr, "gpu-check: %s failed: %s (CUresult %d)\n", what, text, rc);
    return 8;
}

static int load_driver(void) {
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    if (!h) { fprintf(stderr, "gpu-check: cannot load libcuda.so.1: %s\n", dlerror()); return 7; }
#define SYM(field, symbol) \
    if (!(*(void **)&cu.field = dlsym(h, symbol))) { \
        fprintf(stderr, "gpu-check: %s missing from libcuda.so.1\n", symbol); return 7; }
    SYM(init, "cuInit") SYM(count, "cuDeviceGetCount") SYM(get, "cuDeviceGet")
    SYM(name, "cuDeviceGetName") SYM(ctx_create, "cuCtxCreate_v2") SYM(ctx_destroy, "cuCtxDestroy_v2")
    SYM(load, "cuModuleLoadData") SYM(function, "cuModuleGetFunction") SYM(alloc, "cuMemAlloc_v2")
    SYM(dtoh, "cuMemcpyDtoH_v2") SYM(launch, "cuLaunchKernel") SYM(sync, "cuCtxSynchronize")
    SYM(error, "cuGetErrorString")
#undef SYM
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: gpu-check THREADS ITERS\n"); return 2; }
    unsigned n = (unsigned)strtoul(argv[1], 0, 10);
    uint64_t iters = strtoull(argv[2], 0, 10);
    int devices = visible_devices();
    if (devices == 0) { fprintf(stderr, "gpu-check: no /dev/nvidia<N> device node visible\n"); return 6; }
    int rc = load_driver(), count = 0;
    if (rc) return rc;
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CUdeviceptr out;
    char name[256] = "";
    if ((rc = check(cu.init(0), "cuInit")) || (rc = check(cu.count(&count), "cuDeviceGetCount"))) return rc;
    if (count < 1) { fprintf(stderr, "gpu-check: the driver sees no GPU\n"); return 8; }
    if ((rc = check(cu.get(&dev, 0), "cuDeviceGet")) || (rc = check(cu.name(name, sizeof name, dev), "name"))
        || (rc = check(cu.ctx_create(&ctx, 0, dev), "cuCtxCreate"))
        || (rc = check(cu.load(&mod, PTX), "cuModuleLoadData (PTX JIT)"))
        || (rc = check(cu.function(&fn, mod, "lcg"), "cuModuleGetFunction"))
        || (rc = check(cu.alloc(&out, (size_t)n * 8), "cuMemAlloc")))
        return rc;
    for (char *c = name; *c; c++) if (*c == ' ') *c = '_';
    printf("gpu devices=%d name=%s\n", devices, name);
    uint64_t *host = calloc(n, 8), sum = 0;
    if (!host) return 3;
    void *params[] = {&out, &iters, &n};
    unsigned block = 256, grid = (n + block - 1) / block;
    double t0 = now();
    if ((rc = check(cu.launch(fn, grid, 1, 1, block, 1, 1, 0, NULL, params, NULL), "cuLaunchKernel"))
        || (rc = check(cu.sync(), "cuCtxSynchronize")) || (rc = check(cu.dtoh(host, out, (size_t)n * 8), "copy")))
        return rc;
    double t1 = now();
    for (unsigned i = 0; i < n; i++) sum += host[i];
    cu.ctx_destroy(ctx);
    printf("ok gpu seconds=%.6f checksum=%" PRIu64 "\n", t1 - t0, sum);
    return 0;
}
