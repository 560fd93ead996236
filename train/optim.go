package train

import (
	"fmt"
	"math"
	"strings"

	"github.com/goslim/goslim/tensor"
)

// Optimizer updates parameters from their gradients. Params and grads are
// parallel slices of float32 tensors in a fixed order (the order the
// optimizer was made for); Step updates params in place. Every update is a
// plain sequential float32 loop, so results are bit-identical across runs.
type Optimizer interface {
	// Step applies one update with learning rate lr.
	Step(params, grads []*tensor.Tensor, lr float64) error
	// Slots returns the optimizer state: per-parameter buffers by slot
	// name ("momentum", "m", "v"), each parallel to params (nil entries
	// for buffers not allocated yet), and the step count.
	Slots() (slots map[string][]*tensor.Tensor, steps int64)
	// SetSlots restores state returned by Slots (from a checkpoint).
	SetSlots(slots map[string][]*tensor.Tensor, steps int64) error
}

// OptimConfig selects and configures an optimizer. It is part of Config
// and of config files.
type OptimConfig struct {
	// Name is "sgd" (default), "adam" or "adamw".
	Name string `json:"name,omitempty"`
	// Momentum of SGD (0 = plain SGD).
	Momentum float64 `json:"momentum,omitempty"`
	// Nesterov selects Nesterov momentum for SGD.
	Nesterov bool `json:"nesterov,omitempty"`
	// WeightDecay is the L2 coefficient: added to the gradient (SGD, Adam)
	// or decoupled from it (AdamW).
	WeightDecay float64 `json:"weight_decay,omitempty"`
	// Beta1, Beta2 and Eps of Adam/AdamW (defaults 0.9, 0.999, 1e-8).
	Beta1 float64 `json:"beta1,omitempty"`
	Beta2 float64 `json:"beta2,omitempty"`
	Eps   float64 `json:"eps,omitempty"`
}

// NewOptimizer makes the optimizer c names for n parameters; decay[i]
// says whether parameter i gets weight decay (nil means all).
func NewOptimizer(c OptimConfig, n int, decay []bool) (Optimizer, error) {
	if decay != nil && len(decay) != n {
		return nil, fmt.Errorf("train: %d decay flags for %d parameters", len(decay), n)
	}
	if c.WeightDecay < 0 || math.IsNaN(c.WeightDecay) {
		return nil, fmt.Errorf("train: weight decay %v is negative", c.WeightDecay)
	}
	if decay == nil {
		decay = make([]bool, n)
		for i := range decay {
			decay[i] = true
		}
	}
	switch strings.ToLower(c.Name) {
	case "", "sgd":
		if c.Momentum < 0 || c.Momentum >= 1 || math.IsNaN(c.Momentum) {
			return nil, fmt.Errorf("train: SGD momentum %v outside [0, 1)", c.Momentum)
		}
		if c.Nesterov && c.Momentum == 0 {
			return nil, fmt.Errorf("train: Nesterov SGD needs a momentum > 0")
		}
		return &SGD{Momentum: c.Momentum, Nesterov: c.Nesterov, WeightDecay: c.WeightDecay, Decay: decay,
			buf: make([]*tensor.Tensor, n)}, nil
	case "adam", "adamw":
		a := &Adam{Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay,
			Decoupled: strings.EqualFold(c.Name, "adamw"), Decay: decay,
			m: make([]*tensor.Tensor, n), v: make([]*tensor.Tensor, n)}
		if a.Beta1 == 0 {
			a.Beta1 = 0.9
		}
		if a.Beta2 == 0 {
			a.Beta2 = 0.999
		}
		if a.Eps == 0 {
			a.Eps = 1e-8
		}
		if a.Beta1 < 0 || a.Beta1 >= 1 || a.Beta2 < 0 || a.Beta2 >= 1 || !(a.Eps > 0) {
			return nil, fmt.Errorf("train: Adam betas %v, %v must lie in [0, 1) and eps %v be positive", a.Beta1, a.Beta2, a.Eps)
		}
		return a, nil
	}
	return nil, fmt.Errorf("train: unknown optimizer %q (want sgd, adam or adamw)", c.Name)
}

// checkStep validates the parallel slices of a Step call.
func checkStep(params, grads []*tensor.Tensor, n int) error {
	if len(params) != n || len(grads) != n {
		return fmt.Errorf("train: optimizer made for %d parameters, got %d parameters and %d gradients", n, len(params), len(grads))
	}
	for i, p := range params {
		g := grads[i]
		if p == nil || g == nil || p.DType != tensor.Float32 || g.DType != tensor.Float32 || p.Len() != g.Len() {
			return fmt.Errorf("train: parameter %d and its gradient must be float32 tensors of the same size", i)
		}
	}
	return nil
}

// zerosLike returns a zero float32 tensor shaped like t.
func zerosLike(t *tensor.Tensor) *tensor.Tensor {
	z, _ := tensor.New(tensor.Float32, t.Shape)
	return z
}

// SGD is stochastic gradient descent with optional (Nesterov) momentum and
// L2 weight decay, following PyTorch's torch.optim.SGD (dampening 0):
//
//	g = grad + wd*p                (when Decay[i])
//	b = momentum*b + g             (b starts at 0)
//	g = g + momentum*b  (Nesterov)  or  g = b
//	p = p - lr*g
type SGD struct {
	Momentum    float64
	Nesterov    bool
	WeightDecay float64
	Decay       []bool

	buf   []*tensor.Tensor
	steps int64
}

// Step implements Optimizer.
func (o *SGD) Step(params, grads []*tensor.Tensor, lr float64) error {
	if err := checkStep(params, grads, len(o.buf)); err != nil {
		return err
	}
	lr32, mom, wd := float32(lr), float32(o.Momentum), float32(o.WeightDecay)
	for i, pt := range params {
		p, g := pt.F32(), grads[i].F32()
		d := wd
		if !o.Decay[i] {
			d = 0
		}
		if mom == 0 {
			for j := range p {
				p[j] -= lr32 * (g[j] + d*p[j])
			}
			continue
		}
		if o.buf[i] == nil {
			o.buf[i] = zerosLike(pt)
		}
		b := o.buf[i].F32()
		if o.Nesterov {
			for j := range p {
				gj := g[j] + d*p[j]
				b[j] = mom*b[j] + gj
				p[j] -= lr32 * (gj + mom*b[j])
			}
		} else {
			for j := range p {
				gj := g[j] + d*p[j]
				b[j] = mom*b[j] + gj
				p[j] -= lr32 * b[j]
			}
		}
	}
	o.steps++
	return nil
}

// Slots implements Optimizer: slot "momentum".
func (o *SGD) Slots() (map[string][]*tensor.Tensor, int64) {
	return map[string][]*tensor.Tensor{"momentum": o.buf}, o.steps
}

// SetSlots implements Optimizer.
func (o *SGD) SetSlots(slots map[string][]*tensor.Tensor, steps int64) error {
	if err := setSlot(slots, "momentum", o.buf); err != nil {
		return err
	}
	o.steps = steps
	return nil
}

// Adam is Adam (Kingma and Ba) with L2 weight decay added to the gradient,
// or AdamW (Loshchilov and Hutter) with decoupled weight decay when
// Decoupled is set; both follow torch.optim.Adam/AdamW. At step t (from 1):
//
//	p = p*(1 - lr*wd)              (AdamW, when Decay[i])
//	g = grad + wd*p                (Adam, when Decay[i])
//	m = b1*m + (1-b1)*g
//	v = b2*v + (1-b2)*g*g
//	p = p - (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
type Adam struct {
	Beta1, Beta2, Eps float64
	WeightDecay       float64
	Decoupled         bool
	Decay             []bool

	m, v  []*tensor.Tensor
	steps int64
}

// Step implements Optimizer.
func (o *Adam) Step(params, grads []*tensor.Tensor, lr float64) error {
	if err := checkStep(params, grads, len(o.m)); err != nil {
		return err
	}
	o.steps++
	t := float64(o.steps)
	bc1 := 1 - math.Pow(o.Beta1, t)
	bc2 := 1 - math.Pow(o.Beta2, t)
	step := float32(lr / bc1)
	sq2 := float32(math.Sqrt(bc2))
	// 1-beta in float64 first: float32(1-0.999) is exact to float32
	// precision, 1-float32(0.999) is not.
	b1, b2, eps := float32(o.Beta1), float32(o.Beta2), float32(o.Eps)
	c1, c2 := float32(1-o.Beta1), float32(1-o.Beta2)
	for i, pt := range params {
		p, g := pt.F32(), grads[i].F32()
		if o.m[i] == nil {
			o.m[i], o.v[i] = zerosLike(pt), zerosLike(pt)
		}
		m, v := o.m[i].F32(), o.v[i].F32()
		var l2 float32
		if o.Decay[i] && o.WeightDecay != 0 {
			if o.Decoupled {
				shrink := float32(1 - lr*o.WeightDecay)
				for j := range p {
					p[j] *= shrink
				}
			} else {
				l2 = float32(o.WeightDecay)
			}
		}
		for j := range p {
			gj := g[j] + l2*p[j]
			m[j] = b1*m[j] + c1*gj
			v[j] = b2*v[j] + c2*gj*gj
			p[j] -= step * m[j] / (float32(math.Sqrt(float64(v[j])))/sq2 + eps)
		}
	}
	return nil
}

// Slots implements Optimizer: slots "m" and "v".
func (o *Adam) Slots() (map[string][]*tensor.Tensor, int64) {
	return map[string][]*tensor.Tensor{"m": o.m, "v": o.v}, o.steps
}

// SetSlots implements Optimizer.
func (o *Adam) SetSlots(slots map[string][]*tensor.Tensor, steps int64) error {
	if err := setSlot(slots, "m", o.m); err != nil {
		return err
	}
	if err := setSlot(slots, "v", o.v); err != nil {
		return err
	}
	o.steps = steps
	return nil
}

// setSlot copies slot name of slots into dst (same length; nil entries
// stay unallocated).
func setSlot(slots map[string][]*tensor.Tensor, name string, dst []*tensor.Tensor) error {
	src, ok := slots[name]
	if !ok {
		return fmt.Errorf("train: optimizer state lacks slot %q", name)
	}
	if len(src) != len(dst) {
		return fmt.Errorf("train: optimizer slot %q has %d buffers, want %d", name, len(src), len(dst))
	}
	for i, t := range src {
		if t != nil && t.DType != tensor.Float32 {
			return fmt.Errorf("train: optimizer slot %q buffer %d is %v, want float32", name, i, t.DType)
		}
		dst[i] = t
	}
	return nil
}

// ClipGradNorm scales the gradients in place so that their global L2 norm
// (over all tensors together) is at most maxNorm, as PyTorch's
// clip_grad_norm_: g *= maxNorm/(norm+1e-6) when norm > maxNorm. It
// returns the norm before clipping (summed in float64, in order).
// maxNorm <= 0 only measures.
func ClipGradNorm(grads []*tensor.Tensor, maxNorm float64) float64 {
	var ss float64
	for _, g := range grads {
		for _, v := range g.F32() {
			ss += float64(v) * float64(v)
		}
	}
	norm := math.Sqrt(ss)
	if maxNorm > 0 && norm > maxNorm {
		s := float32(maxNorm / (norm + 1e-6))
		for _, g := range grads {
			d := g.F32()
			for j := range d {
				d[j] *= s
			}
		}
	}
	return norm
}

// ClipGradValue clamps every gradient element to [-limit, limit] in place
// (limit <= 0 does nothing).
func ClipGradValue(grads []*tensor.Tensor, limit float64) {
	if limit <= 0 {
		return
	}
	l := float32(limit)
	for _, g := range grads {
		d := g.F32()
		for j, v := range d {
			d[j] = min(max(v, -l), l)
		}
	}
}
