package nets

import (
	"math"
	"testing"
)

func TestParamCounts(t *testing.T) {
	cases := []struct {
		model   string
		c, h, w int
		want    int
	}{
		{"logistic", 1, 28, 28, 7850},
		{"logistic", 3, 32, 32, 30730},
		// 5·5·1·10+10 + 5·5·10·10+10 + 160·10+10 + 10·10+10
		{"convnet", 1, 28, 28, 4490},
		// 5·5·3·10+10 + 2510 + 250·10+10 + 110
		{"convnet", 3, 32, 32, 5890},
	}
	for _, tc := range cases {
		a, err := New(tc.model, tc.c, tc.h, tc.w, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.NumParams(); got != tc.want {
			t.Errorf("%s on %dx%dx%d: %d parameters, want %d", tc.model, tc.c, tc.h, tc.w, got, tc.want)
		}
	}
	if _, err := New("convnet", 1, 12, 12, 10); err == nil {
		t.Error("convnet accepted 12×12 inputs, too small for two stride-2 5×5 convolutions")
	}
	if _, err := New("resnet", 1, 28, 28, 10); err == nil {
		t.Error("unknown model accepted")
	}
}

// TestXavierScales checks the standard-normal parameterisation: the
// effective weights s·W of a Gaussian draw have the Gaussian-Xavier
// variance 2/(fan_in + fan_out), biases start at zero, and draws are
// reproducible and distinct per id.
func TestXavierScales(t *testing.T) {
	a, _ := New("convnet", 1, 28, 28, 10)
	want := []float64{math.Sqrt(2.0 / (25 + 250)), 1, math.Sqrt(2.0 / (250 + 250)), 1, math.Sqrt(2.0 / (160 + 10)), 1, math.Sqrt(2.0 / 20), 1}
	for i, p := range a.Params {
		if math.Abs(p.Scale-want[i]) > 1e-15 {
			t.Errorf("%s: scale %v, want %v", p.Name, p.Scale, want[i])
		}
	}
	v1, err := a.Init(1)
	if err != nil {
		t.Fatal(err)
	}
	v1b, _ := a.Init(1)
	v2, _ := a.Init(2)
	var all []float64
	for i, p := range a.Params {
		for j, x := range v1[i] {
			if x != v1b[i][j] {
				t.Fatalf("init 1 not reproducible at %s[%d]", p.Name, j)
			}
			if p.Bias && x != 0 {
				t.Fatalf("bias %s[%d] = %v, want 0", p.Name, j, x)
			}
		}
		if !p.Bias {
			all = append(all, v1[i]...)
			if v1[i][0] == v2[i][0] {
				t.Errorf("inits 1 and 2 share %s[0]", p.Name)
			}
		}
	}
	// 4,450 standard normals: mean within 4 standard errors of 0, variance within 0.1 of 1.
	var m, s2 float64
	for _, x := range all {
		m += x
	}
	m /= float64(len(all))
	for _, x := range all {
		s2 += (x - m) * (x - m)
	}
	s2 /= float64(len(all) - 1)
	if math.Abs(m) > 4/math.Sqrt(float64(len(all))) || math.Abs(s2-1) > 0.1 {
		t.Errorf("stored weights of init 1: mean %v variance %v, want N(0,1)", m, s2)
	}
	if _, err := a.Init(0); err == nil {
		t.Error("convnet accepted the zero initialisation")
	}
	l, _ := New("logistic", 1, 28, 28, 10)
	z, err := l.Init(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range z {
		for _, x := range v {
			if x != 0 {
				t.Fatal("logistic init 0 is not all zeros")
			}
		}
	}
}

func TestDenseFLOPs(t *testing.T) {
	tests := []struct {
		name    string
		c, h, w int
		want    float64
	}{
		{"logistic", 1, 28, 28, 2 * 784 * 10},
		// 12×12 positions of a 25×10 kernel, 4×4 of 250×10, then 160×10 and 10×10.
		{"convnet", 1, 28, 28, 2 * (144*25*10 + 16*250*10 + 160*10 + 10*10)},
		{"convnet", 3, 32, 32, 2 * (196*75*10 + 25*250*10 + 250*10 + 10*10)},
	}
	for _, tc := range tests {
		a, err := New(tc.name, tc.c, tc.h, tc.w, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.DenseFLOPs(); got != tc.want {
			t.Errorf("%s %dx%dx%d: %g FLOPs, want %g", tc.name, tc.c, tc.h, tc.w, got, tc.want)
		}
	}
}
