// perturb's CUDA kernels, compiled at start with NVRTC for the device's
// architecture (kernels/cudev). Each kernel is the GPU twin of a method of
// kernels.CPU (kernels/cpu.go) and computes every element of its output.
// Scalars are passed as 8-byte values (long long, double): gorgonia.org/cu's
// Launch copies 8 bytes per kernel parameter. Grid-stride loops over n
// elements: any launch size covers every element.

typedef long long i64;

#define LOOP(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

extern "C" __global__ void fill(float *b, i64 n, double v) {
	LOOP(i, n) b[i] = (float)v;
}

// z <- round(s*z) + bias, tanh when act. z (batch, m, n); bias (batch, n)
// or, channel-major, (batch, m).
extern "C" __global__ void bias_act(float *z, const float *bias, i64 batch, i64 m, i64 n, double s, i64 cm, i64 act) {
	float sf = (float)s;
	LOOP(i, batch * m * n) {
		i64 t = i / (m * n), r = (i / n) % m, j = i % n;
		float b = cm ? bias[t * m + r] : bias[t * n + j];
		float o = __fadd_rn(__fmul_rn(sf, z[i]), b);
		z[i] = act ? tanhf(o) : o;
	}
}

// op: 0 neg, 1 exp, 2 tanh
extern "C" __global__ void unary(float *out, const float *in, i64 n, i64 op) {
	LOOP(i, n) {
		float v = in[i];
		out[i] = op == 0 ? -v : (op == 1 ? expf(v) : tanhf(v));
	}
}

// op: 0 add, 1 sub, 2 mul
extern "C" __global__ void binary(float *out, const float *a, const float *b, i64 n, i64 op) {
	LOOP(i, n) {
		float x = a[i], y = b[i];
		out[i] = op == 0 ? __fadd_rn(x, y) : (op == 1 ? __fsub_rn(x, y) : __fmul_rn(x, y));
	}
}

extern "C" __global__ void tanh_back(float *out, const float *t, const float *g, i64 n) {
	LOOP(i, n) {
		float v = t[i];
		out[i] = __fmul_rn(__fsub_rn(1.0f, __fmul_rn(v, v)), g[i]);
	}
}

extern "C" __global__ void tanh_back2(float *out, const float *t, const float *g, const float *h, i64 n) {
	LOOP(i, n) out[i] = __fmul_rn(__fmul_rn(__fmul_rn(-2.0f, t[i]), g[i]), h[i]);
}

// out[o, i] = sum_j in[o, j, i], j increasing: one thread per output.
extern "C" __global__ void sum_mid(float *out, const float *in, i64 outer, i64 mid, i64 inner) {
	LOOP(k, outer * inner) {
		i64 o = k / inner, i = k % inner;
		float s = 0.0f;
		for (i64 j = 0; j < mid; j++) s = __fadd_rn(s, in[(o * mid + j) * inner + i]);
		out[k] = s;
	}
}

extern "C" __global__ void repeat_mid(float *out, const float *in, i64 outer, i64 reps, i64 inner) {
	LOOP(k, outer * reps * inner) {
		i64 o = k / (reps * inner), i = k % inner;
		out[k] = in[o * inner + i];
	}
}

// The image index of patch entry (t, f, q), -1 on the padding:
// kernels.Conv.ImageIndex.
__device__ i64 image_index(i64 t, i64 f, i64 q, i64 images, i64 c, i64 h, i64 w, i64 size, i64 stride, i64 pad, i64 cbhw) {
	i64 oh = (h + 2 * pad - size) / stride + 1, ow = (w + 2 * pad - size) / stride + 1, p = oh * ow;
	i64 j = q / p, yx = q % p, y = yx / ow, x = yx % ow;
	i64 ch = f / (size * size), k = f % (size * size), ky = k / size, kx = k % size;
	i64 iy = y * stride + ky - pad, ix = x * stride + kx - pad;
	if (iy < 0 || iy >= h || ix < 0 || ix >= w) return -1;
	i64 sT = images * c * h * w, sJ = c * h * w, sC = h * w;
	if (cbhw) {
		sJ = h * w;
		sC = images * h * w;
	}
	return t * sT + j * sJ + ch * sC + iy * w + ix;
}

// cols (trials, c*size*size, images*oh*ow) from the images (0 on the
// padding).
extern "C" __global__ void im2col(float *cols, const float *images, i64 trials, i64 images_n, i64 c, i64 h, i64 w, i64 size, i64 stride, i64 pad, i64 cbhw) {
	i64 oh = (h + 2 * pad - size) / stride + 1, ow = (w + 2 * pad - size) / stride + 1;
	i64 q = images_n * oh * ow, f = c * size * size;
	LOOP(k, trials * f * q) {
		i64 t = k / (f * q), fi = (k / q) % f, qi = k % q;
		i64 i = image_index(t, fi, qi, images_n, c, h, w, size, stride, pad, cbhw);
		cols[k] = i < 0 ? 0.0f : images[i];
	}
}

// col2im as a gather: one thread per pixel sums, in increasing (f, q)
// order, every patch entry that reads it (no atomics, deterministic).
// Pixel (py, px) is (py + pad, px + pad) of the zero-padded image; the
// entries that read the padding have no pixel and are dropped.
extern "C" __global__ void col2im(float *images, const float *cols, i64 trials, i64 images_n, i64 c, i64 h, i64 w, i64 size, i64 stride, i64 pad, i64 cbhw) {
	i64 oh = (h + 2 * pad - size) / stride + 1, ow = (w + 2 * pad - size) / stride + 1;
	i64 q = images_n * oh * ow, f = c * size * size;
	LOOP(k, trials * images_n * c * h * w) {
		// Decompose the pixel index in the images' layout.
		i64 t = k / (images_n * c * h * w), rest = k % (images_n * c * h * w);
		i64 j, ch, py, px;
		if (cbhw) {
			ch = rest / (images_n * h * w);
			i64 r2 = rest % (images_n * h * w);
			j = r2 / (h * w);
			py = (r2 % (h * w)) / w;
			px = r2 % w;
		} else {
			j = rest / (c * h * w);
			i64 r2 = rest % (c * h * w);
			ch = r2 / (h * w);
			py = (r2 % (h * w)) / w;
			px = r2 % w;
		}
		float s = 0.0f;
		for (i64 ky = 0; ky < size; ky++) {
			i64 yy = py + pad - ky;
			if (yy < 0 || yy % stride != 0 || yy / stride >= oh) continue;
			for (i64 kx = 0; kx < size; kx++) {
				i64 xx = px + pad - kx;
				if (xx < 0 || xx % stride != 0 || xx / stride >= ow) continue;
				i64 fi = (ch * size + ky) * size + kx;
				i64 qi = j * oh * ow + (yy / stride) * ow + xx / stride;
				s = __fadd_rn(s, cols[(t * f + fi) * q + qi]);
			}
		}
		images[k] = s;
	}
}

// maps (trials, c, images*p) <-> rows (trials, images, p*c).
extern "C" __global__ void flatten(float *out, const float *in, i64 trials, i64 c, i64 images, i64 p, i64 inverse) {
	i64 n = c * images * p;
	LOOP(k, trials * n) {
		i64 t = k / n, r = k % n;
		if (inverse) {
			// out is maps: r = (ch*images + j)*p + i
			i64 ch = r / (images * p), j = (r / p) % images, i = r % p;
			out[k] = in[t * n + (j * p + i) * c + ch];
		} else {
			// out is rows: r = (j*p + i)*c + ch
			i64 j = r / (p * c), i = (r / c) % p, ch = r % c;
			out[k] = in[t * n + (ch * images + j) * p + i];
		}
	}
}

// One thread per row (c is the number of classes: small).
extern "C" __global__ void log_softmax(float *out, const float *in, i64 rows, i64 c) {
	LOOP(r, rows) {
		const float *x = in + r * c;
		float *o = out + r * c;
		float m = x[0];
		for (i64 j = 1; j < c; j++) m = x[j] > m ? x[j] : m;
		float s = 0.0f;
		for (i64 j = 0; j < c; j++) {
			o[j] = __fsub_rn(x[j], m);
			s = __fadd_rn(s, expf(o[j]));
		}
		float ls = logf(s);
		for (i64 j = 0; j < c; j++) o[j] = __fsub_rn(o[j], ls);
	}
}

extern "C" __global__ void log_softmax_back(float *out, const float *y, const float *g, i64 rows, i64 c) {
	LOOP(r, rows) {
		float s = 0.0f;
		for (i64 j = 0; j < c; j++) s = __fadd_rn(s, g[r * c + j]);
		for (i64 j = 0; j < c; j++) out[r * c + j] = __fsub_rn(g[r * c + j], __fmul_rn(expf(y[r * c + j]), s));
	}
}

// Fused log-sum-exp cross-entropy and correctness, one thread per row.
extern "C" __global__ void cross_entropy(float *loss, float *correct, const float *logits, const float *labels, i64 trials, i64 rows, i64 c) {
	LOOP(i, trials * rows) {
		const float *z = logits + i * c;
		i64 lab = (i64)labels[i % rows];
		float m = z[0];
		i64 arg = 0;
		for (i64 j = 1; j < c; j++)
			if (z[j] > m) {
				m = z[j];
				arg = j;
			}
		float s = 0.0f;
		for (i64 j = 0; j < c; j++) s = __fadd_rn(s, expf(__fsub_rn(z[j], m)));
		if (lab < 0 || lab >= c) {
			loss[i] = __int_as_float(0x7fc00000);
			correct[i] = 0.0f;
			continue;
		}
		loss[i] = __fsub_rn(__fadd_rn(m, logf(s)), z[lab]);
		correct[i] = arg == lab ? 1.0f : 0.0f;
	}
}

// x (len(idx), dim) and one-hot y (len(idx), classes) from the pool.
extern "C" __global__ void gather(float *x, float *y, const float *pool, const float *labels, const int *idx, i64 count, i64 dim, i64 classes) {
	LOOP(k, count * dim) {
		i64 i = k / dim, d = k % dim;
		x[k] = pool[(i64)idx[i] * dim + d];
	}
	LOOP(k, count * classes) {
		i64 i = k / classes, cl = k % classes;
		y[k] = (i64)labels[idx[i]] == cl ? 1.0f : 0.0f;
	}
}

// Taylor coefficients of tanh(z), (d+1, n) coefficient-major; d <= 15.
extern "C" __global__ void tanh_jet(float *t, const float *z, i64 d, i64 n) {
	LOOP(e, n) {
		float u[16];
		t[e] = tanhf(z[e]);
		u[0] = __fsub_rn(1.0f, __fmul_rn(t[e], t[e]));
		for (i64 k = 1; k <= d; k++) {
			float s = 0.0f;
			for (i64 j = 1; j <= k; j++) s = __fadd_rn(s, __fmul_rn(__fmul_rn((float)j, z[j * n + e]), u[k - j]));
			t[k * n + e] = __fdiv_rn(s, (float)k);
			float q = 0.0f;
			for (i64 i = 0; i <= k; i++) q = __fadd_rn(q, __fmul_rn(t[i * n + e], t[(k - i) * n + e]));
			u[k] = -q;
		}
	}
}

// Round to nearest even keeping the top bits: bf16 (drop 16), tf32 (13);
// NaN stays a quiet NaN. The bit operations of nets/precision.
__device__ float round_bits(float x, unsigned int k) {
	unsigned int b = __float_as_uint(x);
	if ((b & 0x7fffffffu) > 0x7f800000u) return __uint_as_float(b | 0x00400000u);
	b += ((1u << (k - 1)) - 1u) + ((b >> k) & 1u);
	return __uint_as_float(b & ~((1u << k) - 1u));
}

// fp16: normal numbers like tf32 with overflow above 65504; below 2^-14 a
// quantum of 2^-24 (nets/precision's roundHalf).
__device__ float round_half(float x) {
	unsigned int b = __float_as_uint(x), sign = b & 0x80000000u, a = b & 0x7fffffffu;
	if (a > 0x7f800000u) return __uint_as_float(b | 0x00400000u);
	if (a >= 0x38800000u) {
		a += 0xfffu + ((a >> 13) & 1u);
		a &= ~0x1fffu;
		if (a > 0x477fe000u) a = 0x7f800000u;
		return __uint_as_float(sign | a);
	}
	float t = __fmul_rn(__uint_as_float(a), 16777216.0f);
	t = __fadd_rn(t, 8388608.0f);
	t = __fsub_rn(t, 8388608.0f);
	return __uint_as_float(sign | __float_as_uint(__fmul_rn(t, 5.9604644775390625e-08f)));
}

// f: 0 bf16, 1 fp16, 2 tf32
extern "C" __global__ void round_to(float *b, i64 n, i64 f) {
	LOOP(i, n) b[i] = f == 0 ? round_bits(b[i], 16) : (f == 1 ? round_half(b[i]) : round_bits(b[i], 13));
}
