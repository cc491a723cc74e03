// CUDA emulation header: what perturb.cu needs from CUDA C, in standard
// C++20, so that the system C++ compiler compiles the very text NVRTC
// compiles and the kernels run on the CPU (kernels/cudaemu). Included
// before perturb.cu by emu.cc.
//
// Execution model (emu.cc): a launch runs its blocks on a few OS threads
// (a block at a time per OS thread); the threads of a block run one after
// the other, each as a plain call of the kernel, or, when the source uses
// __syncthreads, each in its own fiber (ucontext) that yields at the
// barrier until every thread of the block has reached it. threadIdx,
// blockIdx, blockDim and gridDim are thread-local variables the scheduler
// sets before it runs (or resumes) a CUDA thread. __shared__ variables are
// thread-local statics: shared by the threads of a block (one OS thread),
// not across the blocks that run at once.
//
// Arithmetic: float is IEEE binary32 on the host too, and emu.cc is
// compiled with -ffp-contract=off, so __fadd_rn and friends round each
// operation as the GPU does. The transcendentals (expf, tanhf, logf) are
// computed in double and rounded to float, as the CPU twin
// (kernels/cpu.go) does, not with CUDA's approximations (2 ulp): the
// emulation checks the kernels' indexing, launch geometry, arguments and
// order of operations, not libdevice's accuracy.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <atomic>

struct dim3 {
	unsigned int x = 1, y = 1, z = 1;
};
typedef dim3 uint3;

extern thread_local uint3 threadIdx, blockIdx;
extern thread_local dim3 blockDim, gridDim;

// __syncthreads waits until every thread of the block has called it
// (emu.cc; only in fiber mode, which the Go side selects when the source
// mentions __syncthreads).
void __syncthreads();

#define __global__ __attribute__((visibility("hidden")))
#define __device__ static inline
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static thread_local

// Rounded arithmetic (round to nearest even: the host's default mode).
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }

// Bit casts.
static inline unsigned int __float_as_uint(float x) {
	unsigned int u;
	std::memcpy(&u, &x, 4);
	return u;
}
static inline int __float_as_int(float x) {
	int u;
	std::memcpy(&u, &x, 4);
	return u;
}
static inline float __uint_as_float(unsigned int u) {
	float x;
	std::memcpy(&x, &u, 4);
	return x;
}
static inline float __int_as_float(int u) {
	float x;
	std::memcpy(&x, &u, 4);
	return x;
}

// Transcendentals in double, rounded to float (the CPU twin's arithmetic).
static inline float emu_expf(float x) { return (float)std::exp((double)x); }
static inline float emu_logf(float x) { return (float)std::log((double)x); }
static inline float emu_tanhf(float x) { return (float)std::tanh((double)x); }
#define expf(x) emu_expf(x)
#define logf(x) emu_logf(x)
#define tanhf(x) emu_tanhf(x)

// Atomics (none used by perturb.cu today): sequentially consistent
// read-modify-writes, correct across the OS threads that run blocks.
template <typename T> static inline T atomicAdd(T *p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
static inline float atomicAdd(float *p, float v) {
	std::atomic_ref<float> r(*p);
	float old = r.load();
	while (!r.compare_exchange_weak(old, old + v)) {
	}
	return old;
}
static inline double atomicAdd(double *p, double v) {
	std::atomic_ref<double> r(*p);
	double old = r.load();
	while (!r.compare_exchange_weak(old, old + v)) {
	}
	return old;
}
template <typename T> static inline T atomicExch(T *p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
template <typename T> static inline T atomicCAS(T *p, T cmp, T v) {
	std::atomic_ref<T>(*p).compare_exchange_strong(cmp, v);
	return cmp;
}
template <typename T> static inline T atomicMax(T *p, T v) {
	std::atomic_ref<T> r(*p);
	T old = r.load();
	while (old < v && !r.compare_exchange_weak(old, v)) {
	}
	return old;
}
template <typename T> static inline T atomicMin(T *p, T v) {
	std::atomic_ref<T> r(*p);
	T old = r.load();
	while (old > v && !r.compare_exchange_weak(old, v)) {
	}
	return old;
}
