// The CUDA emulator's runtime: perturb.cu (the text NVRTC compiles,
// written next to this file by kernels/cudaemu) compiled by the system C++
// compiler after emu.h, a table of its kernels with their parameter
// signatures, and emu_launch, which runs a kernel over a grid of blocks of
// threads with arguments passed as 8-byte slots (as cuLaunchKernel gets
// them from gorgonia.org/cu). Built as a shared library at test time and
// loaded with dlopen (kernels/cudaemu/cudaemu.go).
#include "emu.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#include <ucontext.h>

thread_local uint3 threadIdx, blockIdx;
thread_local dim3 blockDim, gridDim;

#include "perturb.cu"
#include "selftest.cu"

namespace {

// kind is the letter of a kernel parameter type: p float*, x int*, i long
// long, d double. Any other type fails to compile: every parameter must be
// 8 bytes (gorgonia.org/cu's Launch copies 8 bytes per parameter).
template <typename T> struct kind {
	static_assert(sizeof(T) == 0, "kernel parameter of a type the launch plan cannot pass (8-byte float*, int*, long long, double)");
};
template <> struct kind<float *> { static constexpr char c = 'p'; };
template <> struct kind<const float *> { static constexpr char c = 'p'; };
template <> struct kind<int *> { static constexpr char c = 'x'; };
template <> struct kind<const int *> { static constexpr char c = 'x'; };
template <> struct kind<long long> { static constexpr char c = 'i'; };
template <> struct kind<double> { static constexpr char c = 'd'; };

template <typename T> T arg(uint64_t v) {
	if constexpr (std::is_pointer_v<T>) {
		return reinterpret_cast<T>(static_cast<uintptr_t>(v));
	} else if constexpr (std::is_same_v<T, double>) {
		double d;
		std::memcpy(&d, &v, 8);
		return d;
	} else {
		return static_cast<T>(v);
	}
}

struct Entry {
	const char *name;
	const char *sig;
	void (*run)(void *f, const uint64_t *a);
	void *fn;
};

template <typename... A> struct sig {
	static constexpr char s[] = {kind<A>::c..., '\0'};
	template <size_t... I> static void call(void (*f)(A...), const uint64_t *a, std::index_sequence<I...>) { f(arg<A>(a[I])...); }
	static void run(void *f, const uint64_t *a) { call(reinterpret_cast<void (*)(A...)>(f), a, std::index_sequence_for<A...>{}); }
};

template <typename... A> Entry entry(const char *name, void (*f)(A...)) {
	return Entry{name, sig<A...>::s, &sig<A...>::run, reinterpret_cast<void *>(f)};
}

#define K(name) entry(#name, name)

// Every kernel of perturb.cu (kernels.KernelNames; Open checks).
const Entry table[] = {
	K(fill), K(bias_act), K(unary), K(binary), K(tanh_back), K(tanh_back2), K(sum_mid), K(repeat_mid), K(im2col),
	K(col2im), K(flatten), K(log_softmax), K(log_softmax_back), K(cross_entropy), K(gather),
	K(tanh_jet), K(round_to),
	// the emulator's own tests (selftest.cu)
	K(emu_selftest_block_sum), K(emu_selftest_divergent),
};

const Entry *find(const char *name) {
	for (const Entry &e : table)
		if (std::strcmp(e.name, name) == 0) return &e;
	return nullptr;
}

// Fiber mode: one ucontext per CUDA thread of a block, each with a stack
// of stack_size bytes.
constexpr size_t stack_size = 128 * 1024;
struct Fiber {
	ucontext_t ctx;
	std::unique_ptr<char[]> stack; // not zeroed: pages are mapped on use
	uint3 tid;
	bool done = false, waiting = false;
};

struct Sched {
	ucontext_t main;
	std::vector<Fiber> fibers;
	int cur = -1;
	const Entry *e = nullptr;
	const uint64_t *args = nullptr;
};

thread_local Sched *sched = nullptr;

// unfenced counts the worker's __syncthreads calls outside fiber mode (an
// error of the launch: the Go side selects fiber mode when the source
// mentions __syncthreads, or when Options.Fibers is set).
thread_local long unfenced = 0;

void fiber_main() {
	Sched *s = sched;
	Fiber &f = s->fibers[s->cur];
	s->e->run(s->e->fn, s->args);
	f.done = true;
	swapcontext(&f.ctx, &s->main);
}

// Runs block blockIdx of kernel e in fibers; returns an error or "".
std::string run_block_fibers(Sched &s, const Entry *e, const uint64_t *args, unsigned block) {
	s.e = e;
	s.args = args;
	if (s.fibers.size() != block) s.fibers = std::vector<Fiber>(block);
	for (unsigned t = 0; t < block; t++) {
		Fiber &f = s.fibers[t];
		if (!f.stack) f.stack.reset(new char[stack_size]);
		f.done = f.waiting = false;
		f.tid = uint3{t, 0, 0};
		getcontext(&f.ctx);
		f.ctx.uc_stack.ss_sp = f.stack.get();
		f.ctx.uc_stack.ss_size = stack_size;
		f.ctx.uc_link = nullptr;
		makecontext(&f.ctx, fiber_main, 0);
	}
	sched = &s;
	for (;;) {
		unsigned done = 0, waiting = 0;
		for (unsigned t = 0; t < block; t++) {
			Fiber &f = s.fibers[t];
			if (f.done) continue;
			f.waiting = false;
			s.cur = (int)t;
			threadIdx = f.tid;
			swapcontext(&s.main, &f.ctx);
		}
		for (Fiber &f : s.fibers) {
			done += f.done;
			waiting += f.waiting;
		}
		if (done == block) break;
		if (done != 0) {
			sched = nullptr;
			return "__syncthreads not reached by every thread of block " + std::to_string(blockIdx.x) + " (" +
			       std::to_string(done) + " of " + std::to_string(block) + " threads returned)";
		}
	}
	sched = nullptr;
	return "";
}

} // namespace

void __syncthreads() {
	Sched *s = sched;
	if (s == nullptr) {
		unfenced++;
		return;
	}
	Fiber &f = s->fibers[s->cur];
	f.waiting = true;
	swapcontext(&f.ctx, &s->main);
	threadIdx = f.tid;
}

extern "C" {

// emu_signature returns the parameter letters of kernel name, or NULL when
// the table has no such kernel.
__attribute__((visibility("default"))) const char *emu_signature(const char *name) {
	const Entry *e = find(name);
	return e ? e->sig : nullptr;
}

// emu_launch runs kernel name on grid blocks of block threads with nargs
// 8-byte arguments whose kinds (letters as emu_signature's) must match the
// kernel's parameters, the blocks spread over up to workers OS threads,
// each block's threads in fibers when fibers is set. It returns 0, or 1
// with a message in err.
__attribute__((visibility("default"))) int emu_launch(const char *name, int grid, int block, const uint64_t *args,
	const char *kinds, int workers, int fibers, char *err, int errn) {
	const Entry *e = find(name);
	std::string msg;
	if (e == nullptr) {
		msg = std::string("no kernel ") + name + " in the emulator's table (kernels/cudaemu/csrc/emu.cc)";
	} else if (std::strcmp(e->sig, kinds) != 0) {
		msg = std::string("kernel ") + name + " takes parameters " + e->sig + ", the launch passes " + kinds +
		      " (p float*, x int*, i long long, d double)";
	} else if (grid < 1 || block < 1 || block > 1024) {
		msg = "launch of " + std::to_string(grid) + " blocks of " + std::to_string(block) + " threads";
	}
	if (msg.empty()) {
		workers = std::max(1, std::min(workers, grid));
		std::vector<std::string> errs(workers);
		std::vector<long> barriers(workers);
		auto work = [&](int w) {
			unfenced = 0;
			gridDim = dim3{(unsigned)grid, 1, 1};
			blockDim = dim3{(unsigned)block, 1, 1};
			Sched s;
			for (int b = w; b < grid; b += workers) {
				blockIdx = uint3{(unsigned)b, 0, 0};
				if (fibers) {
					errs[w] = run_block_fibers(s, e, args, (unsigned)block);
					if (!errs[w].empty()) return;
					continue;
				}
				for (int t = 0; t < block; t++) {
					threadIdx = uint3{(unsigned)t, 0, 0};
					e->run(e->fn, args);
				}
			}
			barriers[w] = unfenced;
		};
		if (workers == 1) {
			work(0);
		} else {
			std::vector<std::thread> ts;
			for (int w = 0; w < workers; w++) ts.emplace_back(work, w);
			for (auto &t : ts) t.join();
		}
		for (auto &m : errs)
			if (!m.empty()) {
				msg = m;
				break;
			}
		long calls = 0;
		for (long c : barriers) calls += c;
		if (msg.empty() && calls > 0)
			msg = std::to_string(calls) + " __syncthreads calls outside fiber mode (cudaemu.Options.Fibers)";
	}
	if (msg.empty()) return 0;
	std::snprintf(err, errn, "%s", msg.c_str());
	return 1;
}

} // extern "C"
