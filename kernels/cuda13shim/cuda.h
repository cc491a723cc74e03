/* CUDA 13 compatibility shim for gorgonia.org/cu v0.9.6, which calls five
 * driver functions with their CUDA 11/12 signatures. Put this folder first
 * on the include path (CGO_CFLAGS="-I.../kernels/cuda13shim ...") when
 * building with CUDA 13 headers: it includes the real cuda.h, and where the
 * headers are CUDA 13 or newer, replaces the five names by static inline
 * wrappers with the old signatures over the new calls. With older headers
 * it changes nothing. */
#ifndef PERTURB_CUDA13_SHIM_H
#define PERTURB_CUDA13_SHIM_H
#include_next <cuda.h>

#if defined(CUDA_VERSION) && CUDA_VERSION >= 13000

/* cuCtxCreate is cuCtxCreate_v4 with a params pointer (NULL: no execution
 * affinity or CIG settings). */
#undef cuCtxCreate
static inline CUresult perturb_cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev) {
	return cuCtxCreate_v4(pctx, NULL, flags, dev);
}
#define cuCtxCreate perturb_cuCtxCreate

/* cuMemAdvise and cuMemPrefetchAsync take a CUmemLocation: a device
 * ordinal, or CU_DEVICE_CPU (-1) for the host. */
static inline CUmemLocation perturb_location(CUdevice dev) {
	CUmemLocation loc;
	if ((int)dev == CU_DEVICE_CPU) {
		loc.type = CU_MEM_LOCATION_TYPE_HOST;
		loc.id = 0;
	} else {
		loc.type = CU_MEM_LOCATION_TYPE_DEVICE;
		loc.id = (int)dev;
	}
	return loc;
}

#undef cuMemAdvise
static inline CUresult perturb_cuMemAdvise(CUdeviceptr p, size_t n, CUmem_advise advice, CUdevice dev) {
	return cuMemAdvise_v2(p, n, advice, perturb_location(dev));
}
#define cuMemAdvise perturb_cuMemAdvise

#undef cuMemPrefetchAsync
static inline CUresult perturb_cuMemPrefetchAsync(CUdeviceptr p, size_t n, CUdevice dev, CUstream s) {
	return cuMemPrefetchAsync_v2(p, n, perturb_location(dev), 0, s);
}
#define cuMemPrefetchAsync perturb_cuMemPrefetchAsync

/* The graph edge functions take edge data (NULL: default edges). */
#undef cuGraphAddDependencies
static inline CUresult perturb_cuGraphAddDependencies(CUgraph g, const CUgraphNode *from, const CUgraphNode *to, size_t n) {
	return cuGraphAddDependencies_v2(g, from, to, NULL, n);
}
#define cuGraphAddDependencies perturb_cuGraphAddDependencies

#undef cuGraphGetEdges
static inline CUresult perturb_cuGraphGetEdges(CUgraph g, CUgraphNode *from, CUgraphNode *to, size_t *n) {
	return cuGraphGetEdges_v2(g, from, to, NULL, n);
}
#define cuGraphGetEdges perturb_cuGraphGetEdges

#endif /* CUDA_VERSION >= 13000 */
#endif /* PERTURB_CUDA13_SHIM_H */
