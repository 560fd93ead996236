package rewrite

import "github.com/goslim/goslim/ir"

// Simplify runs the standard clean-up pipeline on g and returns the new
// graph:
//
//  1. InferShapes, so Shape and Size of statically shaped values can fold;
//  2. FoldConstants with eval (nil eval folds only Constant, Shape and
//     Size nodes);
//  3. FoldBatchNorm;
//  4. RemoveDead;
//  5. InferShapes on the result, so every value is typed.
//
// ID map: steps 1-3 keep every ValueID (FoldBatchNorm appends its new
// constants after the existing values); RemoveDead then compacts the
// values, so IDs of the returned graph generally differ from g's. Use
// SimplifyMap to get the old-to-new map, or relate values by name (names
// are preserved).
func Simplify(g *ir.Graph, eval Evaluator) (*ir.Graph, error) {
	out, _, err := SimplifyMap(g, eval)
	return out, err
}

// SimplifyMap is Simplify that also returns, for every ValueID of g, its ID
// in the returned graph (ir.NoValue when the value was folded away or
// dropped). The constants created by BatchNorm folding are not in g and so
// not in the map.
func SimplifyMap(g *ir.Graph, eval Evaluator) (*ir.Graph, []ir.ValueID, error) {
	cur, err := InferShapes(g)
	if err != nil {
		return nil, nil, err
	}
	if cur, err = FoldConstants(cur, eval); err != nil {
		return nil, nil, err
	}
	if cur, err = FoldBatchNorm(cur); err != nil {
		return nil, nil, err
	}
	cur, remap := RemoveDead(cur)
	if cur, err = InferShapes(cur); err != nil {
		return nil, nil, err
	}
	return cur, remap[:len(g.Values)], nil
}
