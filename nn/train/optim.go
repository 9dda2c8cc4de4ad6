package train

import (
	"math"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/nn/internal/kernels"
)

// The optimiser: torch.optim.SGD's update and the learning-rate schedule.

// LR returns the learning rate for step step (from 0) of a run of total
// steps: a linear warm-up over cfg.WarmupEpochs (converted to steps with
// total/cfg.Epochs steps per epoch) from 0 (cosine) or LR/25 (onecycle) to
// cfg.LR, then a cosine decay to 0 (cosine) or to LR/25/1e4 (onecycle, as
// PyTorch's OneCycleLR final_div_factor). Steps past the end get the final
// value; total <= 0 gives cfg.LR.
func (t *Trainer) LR(step, total int) float64 { return scheduleLR(&t.cfg, step, total) }

func scheduleLR(cfg *format.TrainConfig, step, total int) float64 {
	peak := cfg.LR
	if total <= 0 {
		return peak
	}
	step = max(step, 0)
	warm := 0
	if cfg.Epochs > 0 {
		warm = int(math.Round(cfg.WarmupEpochs * float64(total) / float64(cfg.Epochs)))
	}
	warm = min(warm, total)
	start, final := 0.0, 0.0
	if cfg.Schedule == "onecycle" {
		start = peak / 25
		final = start / 1e4
	}
	if step < warm {
		return start + (peak-start)*float64(step)/float64(warm)
	}
	p := 1.0
	if rest := total - warm; rest > 0 {
		p = min(1, float64(step-warm)/float64(rest))
	}
	return final + (peak-final)*0.5*(1+math.Cos(math.Pi*p))
}

// sgdPart updates part i of n of the current model's parameters.
func (t *Trainer) sgdPart(i, n int) {
	net := t.net
	total := len(net.params)
	lo, hi := total*i/n, total*(i+1)/n
	mom, nest := float32(t.cfg.Momentum), t.cfg.Nesterov
	if a, b := lo, min(hi, net.nDecay); a < b {
		sgdUpdate(net.params[a:b], net.grads[a:b], net.mom[a:b], t.lr, mom, float32(t.cfg.WeightDecay), nest)
	}
	if a, b := max(lo, net.nDecay), hi; a < b {
		sgdUpdate(net.params[a:b], net.grads[a:b], net.mom[a:b], t.lr, mom, 0, nest)
	}
}

// sgdUpdate is torch.optim.SGD's step (dampening 0) in float32, in its order
// of operations:
//
//	d = g + wd*p;  buf = mom*buf + d;  d = d + mom*buf (Nesterov) or buf;  p -= lr*d
//
// A zero momentum buffer is PyTorch's first step (buf = d).
func sgdUpdate(p, g, buf []float32, lr, mom, wd float32, nesterov bool) {
	g, buf = g[:len(p)], buf[:len(p)]
	for j := range p {
		d := g[j] + wd*p[j]
		b := buf[j]*mom + d
		buf[j] = b
		if nesterov {
			d += mom * b
		} else {
			d = b
		}
		p[j] -= lr * d
	}
}

// repack refreshes the packed weights of n from its parameters.
func (t *Trainer) repack(n *tnet) {
	t.net = n
	t.runPhase(phRepack, 0)
	t.net = nil
}

// repackPart packs layers i, i+n, ... (the classifier last): each layer's
// packed buffers are written by one part only, through its own scratch.
func (t *Trainer) repackPart(i, parts int) {
	net := t.net
	b := t.scr[i].a
	for u := i; u <= len(net.convs); u += parts {
		if u == len(net.convs) {
			c, k := net.last, net.classes
			transposeInto(net.clsW, k, c, b)
			net.clsFwd.Repack(b[:c*k])
			net.clsBwd.Repack(net.clsW)
			continue
		}
		l := &net.convs[u]
		switch l.Kind {
		case nn.LayerStem:
			// Forward: B[k][co] with k = (ky*3+kx)*3+ci, the im2col column;
			// backward: the same as [co][k].
			for co := 0; co < l.Out; co++ {
				for ci := 0; ci < 3; ci++ {
					for t9 := 0; t9 < 9; t9++ {
						b[(t9*3+ci)*l.Out+co] = l.w[(co*3+ci)*9+t9]
					}
				}
			}
			l.fwd.Repack(b[:27*l.Out])
			transposeInto(b, 27, l.Out, b[27*l.Out:])
			l.bwd.Repack(b[27*l.Out : 2*27*l.Out])
		case nn.LayerDepthwise:
			// kernels.Depthwise3x3's layout (see depthwise.go): tap-major, channels
			// padded to kernels.PadChannels(c) with zeros (never written here).
			cp := kernels.PadChannels(l.Out)
			for ch := 0; ch < l.Out; ch++ {
				for t9 := 0; t9 < 9; t9++ {
					l.dwp[t9*cp+ch] = l.w[ch*9+t9]
				}
			}
		default:
			transposeInto(l.w, l.Out, l.In, b)
			l.fwd.Repack(b[:l.In*l.Out])
			l.bwd.Repack(l.w)
		}
	}
}

// transpose writes the transpose of the rows×cols matrix a into b.
func transposeInto(a []float32, rows, cols int, b []float32) {
	b = b[:rows*cols]
	for r := 0; r < rows; r++ {
		row := a[r*cols : (r+1)*cols]
		for c, v := range row {
			b[c*rows+r] = v
		}
	}
}
