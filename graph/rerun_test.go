package graph

import (
	"math"
	"testing"

	"gorgonia.org/tensor"

	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
)

// TestDeviceHVPRerun checks the partial re-execution of the walker's
// Hessian-vector products: a call at the parameters and samples of the
// previous one with a new direction reruns only the tangent-dependent
// steps and gives bitwise the products of a full run (a fresh net's);
// a call at new parameters or samples runs in full again.
func TestDeviceHVPRerun(t *testing.T) {
	for _, tc := range []struct {
		dt  tensor.Dtype
		kdt kernels.DType
	}{{tensor.Float64, kernels.F64}, {tensor.Float32, kernels.F32}} {
		d := walkData(tc.dt, 30)
		dd, err := UploadData(kernels.NewCPU(tc.kdt), d)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"logistic", "mlp", "convnet"} {
			arch, err := nets.New(name, 1, 28, 28, 10)
			if err != nil {
				t.Fatal(err)
			}
			const k, b = 3, 4
			np := arch.NumParams()
			theta, v1, pts := backendCase(t, arch, d, k, b, 1)
			_, v2, _ := backendCase(t, arch, d, k, b, 2)
			theta2, v3, pts3 := backendCase(t, arch, d, k, b, 3)
			rows := func(pts [][]nets.Sample) [][]int {
				out := make([][]int, len(pts))
				for i, p := range pts {
					for _, s := range p {
						out[i] = append(out[i], s.Row)
					}
				}
				return out
			}
			// full returns the products of a fresh net (a full run).
			full := func(theta [][]float64, rs [][]int, v [][]float64) [][]float64 {
				n, err := NewDeviceNet(arch, dd, k, b, BatchHVP)
				if err != nil {
					t.Fatal(err)
				}
				defer n.Close()
				out := zeros(k, np)
				if err := n.HVP(theta, rs, v, out); err != nil {
					t.Fatal(err)
				}
				return out
			}
			n, err := NewDeviceNet(arch, dd, k, b, BatchHVP)
			if err != nil {
				t.Fatal(err)
			}
			if r, all := n.Prog.Reruns(), len(n.Prog.Ops()); r == 0 || r >= all {
				t.Errorf("%s %v: %d of %d steps rerun", name, tc.dt, r, all)
			} else {
				t.Logf("%s %v: %d of %d steps rerun", name, tc.dt, r, all)
			}
			same := func(what string, got, want [][]float64) {
				t.Helper()
				for i := range got {
					for j := range got[i] {
						if math.Float64bits(got[i][j]) != math.Float64bits(want[i][j]) {
							t.Fatalf("%s %v %s: trial %d element %d: %v, a full run gives %v", name, tc.dt, what, i, j, got[i][j], want[i][j])
						}
					}
				}
			}
			out := zeros(k, np)
			for _, c := range []struct {
				what      string
				theta, v  [][]float64
				pts       [][]nets.Sample
				wantRerun bool
			}{
				{"first call", theta, v1, pts, false},
				{"new direction", theta, v2, pts, true},
				{"the first direction again", theta, v1, pts, true},
				{"new parameters", theta2, v2, pts, false},
				{"new direction at the new parameters", theta2, v3, pts, true},
				{"new samples", theta2, v3, pts3, false},
				{"new direction at the new samples", theta2, v1, pts3, true},
			} {
				rs := rows(c.pts)
				rerun := n.primal && sameVecs(n.theta, c.theta) && sameRows(n.rows, rs)
				if rerun != c.wantRerun {
					t.Errorf("%s %v %s: rerun %v, want %v", name, tc.dt, c.what, rerun, c.wantRerun)
				}
				if err := n.HVP(c.theta, rs, c.v, out); err != nil {
					t.Fatal(err)
				}
				same(c.what, out, full(c.theta, rs, c.v))
			}
			// A changed parameter element (one bit) is a new point.
			theta3 := make([][]float64, k)
			for i := range theta {
				theta3[i] = append([]float64(nil), theta2[i]...)
			}
			theta3[k-1][np-1] = math.Nextafter(theta3[k-1][np-1], 1)
			if err := n.HVP(theta3, rows(pts3), v2, out); err != nil {
				t.Fatal(err)
			}
			same("one parameter changed", out, full(theta3, rows(pts3), v2))
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := dd.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeviceHVPChunks checks the chunked Hessian-vector products of a
// DeviceBackend on the CPU device (HVPChunk): they are the sums of the
// chunks' products in chunk order (bitwise those of the programs of each
// chunk alone, added in that order), hence within rounding of one
// program's over all the samples; bitwise the same on 1 and 3 goroutines,
// with and without a program per chunk (HVPBytes), and for a new
// direction (the chunks' reruns) as for a fresh backend.
func TestDeviceHVPChunks(t *testing.T) {
	d := walkData(tensor.Float64, 30)
	for _, name := range []string{"logistic", "convnet"} {
		arch, err := nets.New(name, 1, 28, 28, 10)
		if err != nil {
			t.Fatal(err)
		}
		const k, b, chunk = 2, 11, 4 // chunks of 4, 4 and 3 samples
		np := arch.NumParams()
		theta, v1, pts := backendCase(t, arch, d, k, b, 1)
		_, v2, _ := backendCase(t, arch, d, k, b, 2)
		run := func(workers int, bytes int64, vs ...[][]float64) [][]float64 {
			be := chunkedBackend(t, arch, d, workers, chunk, bytes)
			out := zeros(k, np)
			for _, v := range vs {
				if err := be.HVP(theta, pts, v, out); err != nil {
					t.Fatal(err)
				}
			}
			return out
		}
		// The reference: each chunk's program alone, added in order.
		want := zeros(k, np)
		dd, err := UploadData(kernels.NewCPU(kernels.F64), d)
		if err != nil {
			t.Fatal(err)
		}
		for lo := 0; lo < b; lo += chunk {
			hi := min(lo+chunk, b)
			sub := make([][]nets.Sample, k)
			for i := range sub {
				sub[i] = pts[i][lo:hi]
			}
			be, err := NewDeviceBackend(arch, dd, 1)
			if err != nil {
				t.Fatal(err)
			}
			out := zeros(k, np)
			if err := be.HVP(theta, sub, v2, out); err != nil {
				t.Fatal(err)
			}
			be.Close()
			for i := range want {
				for j := range want[i] {
					want[i][j] += out[i][j]
				}
			}
		}
		whole := zeros(k, np)
		be, err := NewDeviceBackend(arch, dd, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := be.HVP(theta, pts, v2, whole); err != nil {
			t.Fatal(err)
		}
		be.Close()
		for _, c := range []struct {
			what    string
			workers int
			bytes   int64
			vs      [][][]float64
		}{
			{"1 goroutine", 1, 0, [][][]float64{v2}},
			{"3 goroutines", 3, 0, [][][]float64{v2}},
			{"3 goroutines, a rerun", 3, 0, [][][]float64{v1, v2}},
			{"2 goroutines, no program per chunk", 2, 1, [][][]float64{v1, v2}},
		} {
			got := run(c.workers, c.bytes, c.vs...)
			worst := 0.0
			for i := range got {
				scale := 0.0
				for j := range got[i] {
					if math.Float64bits(got[i][j]) != math.Float64bits(want[i][j]) {
						t.Fatalf("%s %s: trial %d element %d: %v, the chunks' programs give %v", name, c.what, i, j, got[i][j], want[i][j])
					}
					scale = math.Max(scale, math.Abs(whole[i][j]))
				}
				for j := range got[i] {
					worst = math.Max(worst, math.Abs(got[i][j]-whole[i][j])/scale)
				}
			}
			if !(worst < 1e-12) {
				t.Errorf("%s %s: %.3g of the largest element from one program's products", name, c.what, worst)
			}
		}
	}
}
