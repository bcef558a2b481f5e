package io.loraspark.train.model;

/**
 * A naive plain-Java Llama forward pass in double precision, written straight from the Hugging Face
 * {@code modeling_llama.py} equations with loops only, as the independent reference for the ND4J
 * {@link Transformer}. One unpadded sequence at a time; no batching, no buffers, no tricks.
 */
final class ReferenceLlama {
  private final ModelConfig c;
  private final ModelWeights w;

  ReferenceLlama(ModelWeights w) {
    this.c = w.config();
    this.w = w;
  }

  /** Logits [T][V] of one sequence at positions 0..T-1. */
  double[][] logits(int[] ids) {
    int t = ids.length;
    double[][] x = new double[t][];
    for (int i = 0; i < t; i++) {
      x[i] = row(w.embed(), ids[i]);
    }
    for (int l = 0; l < c.numLayers(); l++) {
      LayerWeights lw = w.layers().get(l);
      double[][] h = norm(x, lw.inputNorm());
      double[][] q = linear(h, lw.wq(), lw.bq());
      double[][] k = linear(h, lw.wk(), lw.bk());
      double[][] v = linear(h, lw.wv(), lw.bv());
      rope(q, c.numHeads());
      rope(k, c.numKvHeads());
      double[][] att = attention(q, k, v);
      add(x, linear(att, lw.wo(), lw.bo()));
      double[][] h2 = norm(x, lw.postNorm());
      double[][] g = linear(h2, lw.wGate(), lw.bGate());
      double[][] u = linear(h2, lw.wUp(), lw.bUp());
      for (int i = 0; i < t; i++) {
        for (int j = 0; j < g[i].length; j++) {
          g[i][j] = g[i][j] / (1 + Math.exp(-g[i][j])) * u[i][j];
        }
      }
      add(x, linear(g, lw.wDown(), lw.bDown()));
    }
    return linear(norm(x, w.finalNorm()), w.lmHead(), null);
  }

  /** Mean next-token cross-entropy (nats) of one sequence. */
  double loss(int[] ids) {
    double[][] logits = logits(ids);
    double sum = 0;
    for (int i = 0; i + 1 < ids.length; i++) {
      double max = Double.NEGATIVE_INFINITY;
      for (double z : logits[i]) {
        max = Math.max(max, z);
      }
      double se = 0;
      for (double z : logits[i]) {
        se += Math.exp(z - max);
      }
      sum += max + Math.log(se) - logits[i][ids[i + 1]];
    }
    return sum / (ids.length - 1);
  }

  private double[][] attention(double[][] q, double[][] k, double[][] v) {
    int t = q.length;
    int hd = c.headDim();
    int group = c.numHeads() / c.numKvHeads();
    double[][] out = new double[t][c.qDim()];
    for (int h = 0; h < c.numHeads(); h++) {
      int kvh = h / group;
      for (int i = 0; i < t; i++) {
        double[] s = new double[i + 1];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j <= i; j++) {
          double dot = 0;
          for (int d = 0; d < hd; d++) {
            dot += q[i][h * hd + d] * k[j][kvh * hd + d];
          }
          s[j] = dot / Math.sqrt(hd);
          max = Math.max(max, s[j]);
        }
        double z = 0;
        for (int j = 0; j <= i; j++) {
          s[j] = Math.exp(s[j] - max);
          z += s[j];
        }
        for (int j = 0; j <= i; j++) {
          for (int d = 0; d < hd; d++) {
            out[i][h * hd + d] += s[j] / z * v[j][kvh * hd + d];
          }
        }
      }
    }
    return out;
  }

  private void rope(double[][] x, int heads) {
    int hd = c.headDim();
    int half = hd / 2;
    for (int p = 0; p < x.length; p++) {
      for (int h = 0; h < heads; h++) {
        for (int i = 0; i < half; i++) {
          double angle = p * Math.pow(c.ropeTheta(), -2.0 * i / hd);
          double a = x[p][h * hd + i];
          double b = x[p][h * hd + i + half];
          x[p][h * hd + i] = a * Math.cos(angle) - b * Math.sin(angle);
          x[p][h * hd + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
        }
      }
    }
  }

  private double[][] norm(double[][] x, org.nd4j.linalg.api.ndarray.INDArray weight) {
    double[][] out = new double[x.length][];
    for (int i = 0; i < x.length; i++) {
      double ms = 0;
      for (double v : x[i]) {
        ms += v * v;
      }
      double r = 1 / Math.sqrt(ms / x[i].length + c.rmsNormEps());
      out[i] = new double[x[i].length];
      for (int j = 0; j < x[i].length; j++) {
        out[i][j] = x[i][j] * r * weight.getDouble(j);
      }
    }
    return out;
  }

  private static double[][] linear(
      double[][] x,
      org.nd4j.linalg.api.ndarray.INDArray wt,
      org.nd4j.linalg.api.ndarray.INDArray b) {
    double[][] m = wt.toDoubleMatrix(); // [out][in]
    double[][] y = new double[x.length][m.length];
    for (int i = 0; i < x.length; i++) {
      for (int o = 0; o < m.length; o++) {
        double s = b == null ? 0 : b.getDouble(o);
        for (int j = 0; j < m[o].length; j++) {
          s += x[i][j] * m[o][j];
        }
        y[i][o] = s;
      }
    }
    return y;
  }

  private static double[] row(org.nd4j.linalg.api.ndarray.INDArray m, int r) {
    return m.getRow(r).toDoubleVector();
  }

  private static void add(double[][] x, double[][] y) {
    for (int i = 0; i < x.length; i++) {
      for (int j = 0; j < x[i].length; j++) {
        x[i][j] += y[i][j];
      }
    }
  }
}
