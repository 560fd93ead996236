package ops

import "github.com/goslim/goslim/internal/kernel"

func registerShape(t *kernel.Table) {}
