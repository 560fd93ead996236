package train

import (
	"fmt"
	"math"
	"strings"
)

// Schedule gives the learning rate of each optimizer step (counted from
// 0 over the whole run).
type Schedule interface {
	LR(step int) float64
}

// ScheduleFunc adapts a function to Schedule.
type ScheduleFunc func(step int) float64

// LR implements Schedule.
func (f ScheduleFunc) LR(step int) float64 { return f(step) }

// Constant keeps lr.
func Constant(lr float64) Schedule { return ScheduleFunc(func(int) float64 { return lr }) }

// StepDecay multiplies lr by gamma every `every` steps:
// lr * gamma^floor(step/every).
func StepDecay(lr float64, every int, gamma float64) Schedule {
	every = max(every, 1)
	return ScheduleFunc(func(step int) float64 { return lr * math.Pow(gamma, float64(step/every)) })
}

// Cosine anneals from lr to minLR over total steps:
// minLR + (lr-minLR)*(1+cos(pi*step/total))/2, staying at minLR after.
func Cosine(lr, minLR float64, total int) Schedule {
	total = max(total, 1)
	return ScheduleFunc(func(step int) float64 {
		if step >= total {
			return minLR
		}
		return minLR + (lr-minLR)*(1+math.Cos(math.Pi*float64(step)/float64(total)))/2
	})
}

// Warmup prepends a linear warm-up of `steps` steps to after: step
// s < steps gets after.LR(0)*(s+1)/steps, and later steps get
// after.LR(s-steps), so the wrapped schedule starts when the warm-up ends.
func Warmup(after Schedule, steps int) Schedule {
	if steps <= 0 {
		return after
	}
	return ScheduleFunc(func(step int) float64 {
		if step < steps {
			return after.LR(0) * float64(step+1) / float64(steps)
		}
		return after.LR(step - steps)
	})
}

// ScheduleConfig describes a schedule in epochs, for Config and config
// files.
type ScheduleConfig struct {
	// Name is "constant", "step" or "cosine" (default).
	Name string `json:"name,omitempty"`
	// LR is the base learning rate.
	LR float64 `json:"lr,omitempty"`
	// MinLR is the final rate of the cosine schedule.
	MinLR float64 `json:"min_lr,omitempty"`
	// WarmupEpochs of linear warm-up (may be fractional) before the
	// schedule proper, which then spans the remaining steps.
	WarmupEpochs float64 `json:"warmup_epochs,omitempty"`
	// StepEpochs and Gamma of the step schedule: multiply by Gamma every
	// StepEpochs epochs (default Gamma 0.1).
	StepEpochs float64 `json:"step_epochs,omitempty"`
	Gamma      float64 `json:"gamma,omitempty"`
}

// Build returns the schedule for a run of epochs×stepsPerEpoch steps.
func (c ScheduleConfig) Build(stepsPerEpoch, epochs int) (Schedule, error) {
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		return nil, fmt.Errorf("train: learning rate %v must be positive", c.LR)
	}
	if c.MinLR < 0 || c.WarmupEpochs < 0 || c.StepEpochs < 0 || c.Gamma < 0 {
		return nil, fmt.Errorf("train: schedule values must not be negative: %+v", c)
	}
	total := stepsPerEpoch * epochs
	warm := int(math.Round(c.WarmupEpochs * float64(stepsPerEpoch)))
	if warm > total {
		warm = total
	}
	var s Schedule
	switch strings.ToLower(c.Name) {
	case "constant":
		s = Constant(c.LR)
	case "step":
		if c.StepEpochs <= 0 {
			return nil, fmt.Errorf("train: the step schedule needs step_epochs > 0")
		}
		g := c.Gamma
		if g == 0 {
			g = 0.1
		}
		s = StepDecay(c.LR, int(math.Round(c.StepEpochs*float64(stepsPerEpoch))), g)
	case "", "cosine":
		s = Cosine(c.LR, c.MinLR, total-warm)
	default:
		return nil, fmt.Errorf("train: unknown schedule %q (want constant, step or cosine)", c.Name)
	}
	return Warmup(s, warm), nil
}
