package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
)

func TestLayers(t *testing.T) {
	st := func(id string, needs ...string) stepView { return stepView{ID: id, Name: id, Needs: needs} }
	names := func(ls [][]stepView) string {
		var out []string
		for _, l := range ls {
			var ids []string
			for _, s := range l {
				ids = append(ids, s.ID)
			}
			out = append(out, fmt.Sprint(ids))
		}
		return fmt.Sprint(out)
	}
	for _, c := range []struct {
		steps []stepView
		want  string
	}{
		{[]stepView{st("a"), st("b")}, "[]"},
		{[]stepView{st("lint"), st("build"), st("test", "build"), st("deploy", "test", "lint")}, "[[lint build] [test] [deploy]]"},
		{[]stepView{st("x", "y"), st("y", "x"), st("z", "missing")}, "[[z] [y] [x]]"},
	} {
		if got := names(layers(c.steps)); got != c.want {
			t.Errorf("layers: %s, want %s", got, c.want)
		}
	}
}

// The run page draws the graph once steps carry needs (the pipeline
// engine's result.steps); until then the list alone is shown.
func TestRunPageDrawsTheGraph(t *testing.T) {
	s, _ := newTestUI(t, &fakeAPI{}, &fakeLogs{})
	steps := []stepView{{Index: 0, ID: "build", Name: "build", Status: "success"}, {Index: 1, ID: "test", Name: "test", Status: "running", Needs: []string{"build"}}}
	v := &runView{Run: &forge.Run{ID: "r1", RepoName: "app", Status: forge.RunRunning}, Steps: steps, Groups: []stepGroup{{Steps: steps}}, Graph: layers(steps)}
	rec := httptest.NewRecorder()
	s.render(rec, httptest.NewRequest(http.MethodGet, "/ui/repos/app/runs/r1", nil), http.StatusOK, "run", &view{Title: "run", Data: v})
	body := rec.Body.String()
	for _, want := range []string{`class="graph"`, `href="#step-0" data-node="build"`, "needs build", `id="step-1"`, `data-id="test"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the run page lacks %q", want)
		}
	}
}
