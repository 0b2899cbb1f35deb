package web

// layers arranges steps for the run graph: layer 0 holds the steps that
// need nothing, layer n the steps whose longest chain of needs has n
// links. Needs name step ids; unknown ids are ignored and a cycle (which
// the workflow compiler refuses) cannot loop here. It returns nil when no
// step needs another: a plain list says it all then.
func layers(steps []stepView) [][]stepView {
	byID := make(map[string]int, len(steps))
	any := false
	for i, st := range steps {
		byID[st.ID] = i
		any = any || len(st.Needs) > 0
	}
	if !any {
		return nil
	}
	depth := make([]int, len(steps))
	state := make([]uint8, len(steps)) // 0 new, 1 visiting, 2 done
	var visit func(i int) int
	visit = func(i int) int {
		switch state[i] {
		case 1:
			return 0
		case 2:
			return depth[i]
		}
		state[i] = 1
		d := 0
		for _, n := range steps[i].Needs {
			if j, ok := byID[n]; ok && j != i {
				d = max(d, visit(j)+1)
			}
		}
		depth[i], state[i] = d, 2
		return d
	}
	var out [][]stepView
	for i := range steps {
		d := visit(i)
		for len(out) <= d {
			out = append(out, nil)
		}
		out[d] = append(out[d], steps[i])
	}
	return out
}
