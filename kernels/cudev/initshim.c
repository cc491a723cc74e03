//go:build gpu

// cuInit interposition. gorgonia.org/cu calls cuInit(0) in its package
// init and calls os.Exit(1) when it fails, which would end a gpu-tagged
// binary (and every test binary linking cu) on a machine with the driver
// library but no usable device, before perturb could fall back to the CPU.
// This definition, in the executable, takes precedence over libcuda's: it
// calls the real cuInit (found with dlsym(RTLD_NEXT)), records its status
// for perturb_cuinit_status, and reports success to cu. Every other driver
// call goes to libcuda directly; cudev checks the recorded status before
// making any.

#define _GNU_SOURCE
#include <dlfcn.h>
#include <cuda.h>

static int perturb_cuinit_called = 0;
static CUresult perturb_cuinit_result = CUDA_ERROR_NOT_INITIALIZED;

CUresult CUDAAPI cuInit(unsigned int flags) {
	typedef CUresult (*initfn)(unsigned int);
	initfn real = (initfn)dlsym(RTLD_NEXT, "cuInit");
	perturb_cuinit_called = 1;
	if (real == NULL) {
		perturb_cuinit_result = CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND;
		return CUDA_SUCCESS;
	}
	perturb_cuinit_result = real(flags);
	return CUDA_SUCCESS;
}

// perturb_cuinit_status returns the real cuInit's status (calling it if
// nobody has).
int perturb_cuinit_status(void) {
	if (!perturb_cuinit_called) cuInit(0);
	return (int)perturb_cuinit_result;
}
