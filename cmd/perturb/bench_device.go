package main

import (
	"fmt"
	"time"

	"github.com/perturb/perturb/graph"
	"github.com/perturb/perturb/kernels"
	"github.com/perturb/perturb/nets"
	"github.com/perturb/perturb/nets/data"
)

// deviceBench is the measurements on a kernels.Device (the GPU).
type deviceBench struct {
	Device         string                       `json:"device"`
	GemmN          int                          `json:"gemm_n"`
	GemmGFLOPs     float64                      `json:"gemm_gflops"`
	GemmGFLOPsTF32 float64                      `json:"gemm_gflops_tf32,omitempty"`
	Models         map[string]*deviceModelBench `json:"models"`
	// ModelsTF32 is Models with cuBLAS's TF32 mode on (when the device
	// has it).
	ModelsTF32 map[string]*deviceModelBench `json:"models_tf32,omitempty"`
}

type deviceModelBench struct {
	K                 int     `json:"k"`
	TrialsPerSBatched float64 `json:"trials_per_s_batched"`
	EvalGFLOPs        float64 `json:"eval_gflops"`
	EvalSeconds       float64 `json:"eval_seconds"`
	EvalOverGemm      float64 `json:"eval_over_gemm"`
}

// deviceGemm times an n³ float32 product on dev (best of three, after a
// warm-up), in GFLOP/s.
func deviceGemm(dev kernels.Device, n int) (float64, error) {
	var bufs [3]kernels.Buffer
	for i := range bufs {
		b, err := dev.Alloc(n * n)
		if err != nil {
			return 0, err
		}
		defer dev.Free(b)
		if err := dev.Fill(b, 0.25); err != nil {
			return 0, err
		}
		bufs[i] = b
	}
	g := kernels.Gemm{Batch: 1, M: n, N: n, K: n, Alpha: 1}.Strided()
	best := 0.0
	for r := 0; r < 4; r++ {
		start := time.Now()
		if err := dev.Gemm(g, bufs[2], bufs[0], bufs[1]); err != nil {
			return 0, err
		}
		if err := dev.Sync(); err != nil {
			return 0, err
		}
		if r > 0 {
			best = max(best, 2*float64(n)*float64(n)*float64(n)/time.Since(start).Seconds()/1e9)
		}
	}
	return best, nil
}

// benchDevice measures the GPU path: cuBLAS SGEMM (strict float32, then
// TF32), and per model K trials of 10 SGD steps of batch 1 plus the
// full-pool test loss (trials_per_s_batched), and the evaluation alone
// (eval_gflops, dense FLOPs as in the CPU bench), in strict float32 and
// again with TF32 (models_tf32) where the device has it.
func benchDevice(dev kernels.Device, pool *data.Pool, n, k int, logf func(string, ...any)) (*deviceBench, error) {
	rep := &deviceBench{Device: dev.Name(), GemmN: n, Models: map[string]*deviceModelBench{}}
	var err error
	if rep.GemmGFLOPs, err = deviceGemm(dev, n); err != nil {
		return nil, fmt.Errorf("gemm: %w", err)
	}
	if ok, err := dev.SetTF32(true); err != nil {
		return nil, err
	} else if ok {
		if rep.GemmGFLOPsTF32, err = deviceGemm(dev, n); err != nil {
			return nil, fmt.Errorf("gemm tf32: %w", err)
		}
		if _, err := dev.SetTF32(false); err != nil {
			return nil, err
		}
	}
	logf("device %s: gemm %d³ %.1f GFLOP/s float32, %.1f TF32", rep.Device, n, rep.GemmGFLOPs, rep.GemmGFLOPsTF32)
	gd := &graph.Data{X32: pool.Float32(), Y: pool.Labels, Dim: pool.Dim(), Classes: pool.Classes}
	dd, err := graph.UploadData(dev, gd)
	if err != nil {
		return nil, err
	}
	defer dev.Free(dd.X)
	defer dev.Free(dd.Y)
	for _, name := range []string{"logistic", "convnet"} {
		arch, err := nets.New(name, pool.Channels, pool.Height, pool.Width, pool.Classes)
		if err != nil {
			return nil, err
		}
		mb, err := benchDeviceModel(dev, dd, arch, pool.Len(), k)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		mb.EvalOverGemm = mb.EvalGFLOPs / rep.GemmGFLOPs
		rep.Models[name] = mb
		logf("device %s: K=%d %.1f trials/s, eval %.1f GFLOP/s (%.2f of gemm)", name, mb.K, mb.TrialsPerSBatched, mb.EvalGFLOPs, mb.EvalOverGemm)
		if rep.GemmGFLOPsTF32 == 0 {
			continue
		}
		if _, err := dev.SetTF32(true); err != nil {
			return nil, err
		}
		mt, err := benchDeviceModel(dev, dd, arch, pool.Len(), k)
		if _, err2 := dev.SetTF32(false); err == nil {
			err = err2
		}
		if err != nil {
			return nil, fmt.Errorf("%s with TF32: %w", name, err)
		}
		mt.EvalOverGemm = mt.EvalGFLOPs / rep.GemmGFLOPsTF32
		if rep.ModelsTF32 == nil {
			rep.ModelsTF32 = map[string]*deviceModelBench{}
		}
		rep.ModelsTF32[name] = mt
		logf("device %s TF32: K=%d %.1f trials/s, eval %.1f GFLOP/s (%.3f of TF32 gemm)", name, mt.K, mt.TrialsPerSBatched, mt.EvalGFLOPs, mt.EvalOverGemm)
	}
	return rep, nil
}

func benchDeviceModel(dev kernels.Device, dd *graph.DeviceData, arch *nets.Arch, poolLen, k int) (*deviceModelBench, error) {
	if k == 0 {
		k = 256
	}
	mb := &deviceModelBench{K: k}
	vals, err := arch.Init(1)
	if err != nil {
		return nil, err
	}
	var flat []float64
	for _, v := range vals {
		flat = append(flat, v...)
	}
	theta, grad := make([][]float64, k), make([][]float64, k)
	for i := range theta {
		theta[i] = append([]float64(nil), flat...)
		grad[i] = make([]float64, len(flat))
	}
	net, err := graph.NewDeviceNet(arch, dd, k, 1, graph.BatchGrad)
	if err != nil {
		return nil, err
	}
	defer net.Close()
	ev, err := graph.NewDeviceEval(arch, dd, k, 1000)
	if err != nil {
		return nil, err
	}
	defer ev.Close()
	loss, acc := make([]float64, k), make([]float64, k)
	rows := make([][]int, k)
	start := time.Now()
	for s := 0; s < 10; s++ {
		for i := range rows {
			rows[i] = []int{(i*10 + s) * 7 % poolLen}
		}
		if err := net.Grad(theta, rows, loss, grad); err != nil {
			return nil, err
		}
		for i := range theta {
			for j, g := range grad[i] {
				theta[i][j] = float64(float32(theta[i][j] - 0.01*g))
			}
		}
	}
	if err := ev.TestLoss(theta, loss, acc); err != nil {
		return nil, err
	}
	mb.TrialsPerSBatched = float64(k) / time.Since(start).Seconds()
	start = time.Now()
	if err := ev.TestLoss(theta, loss, acc); err != nil {
		return nil, err
	}
	if err := dev.Sync(); err != nil {
		return nil, err
	}
	mb.EvalSeconds = time.Since(start).Seconds()
	mb.EvalGFLOPs = float64(k) * float64(poolLen) * arch.DenseFLOPs() / mb.EvalSeconds / 1e9
	return mb, nil
}
