package plan

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkBuildAllCached is the scheduler's share of a no-op `cairn build`:
// 200 steps in 20 layers of 10, each depending on the whole layer before,
// every key in the cache. Nothing runs; keys are computed and looked up.
func BenchmarkBuildAllCached(b *testing.B) {
	var ss []Step
	for l := 0; l < 20; l++ {
		for i := 0; i < 10; i++ {
			s := Step{ID: fmt.Sprintf("s%02d-%d", l, i), Inputs: Inputs{Recipe: fmt.Sprint(l, i), Sandbox: "v1", Env: []string{"A=1", "B=2"}}}
			for j := 0; l > 0 && j < 10; j++ {
				s.Deps = append(s.Deps, fmt.Sprintf("s%02d-%d", l-1, j))
			}
			ss = append(ss, s)
		}
	}
	p, err := New(ss)
	if err != nil {
		b.Fatal(err)
	}
	cache := &memCache{m: map[string]string{}}
	fill := RunnerFunc(func(ctx context.Context, job Job) (Result, error) {
		out := "sha256:" + sha256Hex(job.Key)
		return Result{Output: out}, nil
	})
	res, err := Build(context.Background(), p, fill)
	if err != nil {
		b.Fatal(err)
	}
	// Fill the cache with the keys Build computed.
	outputs := map[string]string{}
	for _, id := range p.Order() {
		s, _ := p.Step(id)
		k, err := s.Key(outputs)
		if err != nil {
			b.Fatal(err)
		}
		cache.m[k] = res[id].Output
		outputs[id] = res[id].Output
	}
	never := RunnerFunc(func(ctx context.Context, job Job) (Result, error) {
		return Result{}, fmt.Errorf("%s ran", job.Step.ID)
	})
	for b.Loop() {
		if _, err := Build(context.Background(), p, never, UseCache(cache)); err != nil {
			b.Fatal(err)
		}
	}
}
