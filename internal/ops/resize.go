package ops

import "github.com/goslim/goslim/internal/kernel"

func registerResize(t *kernel.Table) {}
