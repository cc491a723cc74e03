/* Calls the five functions with the CUDA 11/12 signatures gorgonia.org/cu
 * uses, and records what the fake CUDA 13 functions receive. */
#include <cuda.h>
#include <stdio.h>

static int calls, last_type, last_id;
static const void *last_params = (const void *)1;

CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags, CUdevice dev) {
	(void)pctx; (void)flags; (void)dev; last_params = params; calls++; return 0;
}
CUresult cuMemAdvise_v2(CUdeviceptr p, size_t n, CUmem_advise advice, CUmemLocation loc) {
	(void)p; (void)n; (void)advice; last_type = loc.type; last_id = loc.id; calls++; return 0;
}
CUresult cuMemPrefetchAsync_v2(CUdeviceptr p, size_t n, CUmemLocation loc, unsigned int flags, CUstream s) {
	(void)p; (void)n; (void)flags; (void)s; last_type = loc.type; last_id = loc.id; calls++; return 0;
}
CUresult cuGraphAddDependencies_v2(CUgraph g, const CUgraphNode *from, const CUgraphNode *to, const CUgraphEdgeData *e, size_t n) {
	(void)g; (void)from; (void)to; (void)n; last_params = e; calls++; return 0;
}
CUresult cuGraphGetEdges_v2(CUgraph g, CUgraphNode *from, CUgraphNode *to, CUgraphEdgeData *e, size_t *n) {
	(void)g; (void)from; (void)to; (void)n; last_params = e; calls++; return 0;
}

int main(void) {
	CUcontext ctx;
	size_t n = 0;
	int bad = 0;
	cuCtxCreate(&ctx, 0u, (CUdevice)0);
	bad |= last_params != NULL;
	cuMemAdvise(0, 16, 1, (CUdevice)3);
	bad |= last_type != CU_MEM_LOCATION_TYPE_DEVICE || last_id != 3;
	cuMemPrefetchAsync(0, 16, CU_DEVICE_CPU, (CUstream)0);
	bad |= last_type != CU_MEM_LOCATION_TYPE_HOST;
	cuGraphAddDependencies((CUgraph)0, NULL, NULL, 0);
	cuGraphGetEdges((CUgraph)0, NULL, NULL, &n);
	bad |= last_params != NULL || calls != 5;
	printf("%s %d\n", bad ? "FAIL" : "ok", calls);
	return bad;
}
