// Kernels that test the emulator itself (kernels/cudaemu's
// TestEmulatorBarriers): a block reduction through __shared__ memory and
// __syncthreads, with an atomicAdd of the block sums, and a barrier that
// only some threads of a block reach (undefined on a GPU; an error here).
// Written in CUDA C as perturb.cu is; not part of perturb.cu.

// out[b] = sum of in over block b's elements (tree order), out[gridDim.x]
// += every block's sum (atomically).
extern "C" __global__ void emu_selftest_block_sum(float *out, const float *in, long long n) {
	__shared__ float s[1024];
	long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
	s[threadIdx.x] = i < n ? in[i] : 0.0f;
	__syncthreads();
	for (unsigned int h = blockDim.x / 2; h > 0; h /= 2) {
		if (threadIdx.x < h) s[threadIdx.x] = __fadd_rn(s[threadIdx.x], s[threadIdx.x + h]);
		__syncthreads();
	}
	if (threadIdx.x == 0) {
		out[blockIdx.x] = s[0];
		atomicAdd(&out[gridDim.x], s[0]);
	}
}

// Only the first half of each block reaches the barrier.
extern "C" __global__ void emu_selftest_divergent(float *out, const float *in, long long n) {
	if (threadIdx.x < blockDim.x / 2) __syncthreads();
	long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) out[i] = in[i];
}
