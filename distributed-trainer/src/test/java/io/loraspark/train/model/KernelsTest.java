package io.loraspark.train.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * Each fused float32 kernel family ({@link ModelKernels} picks them for float arrays) against the
 * ND4J reference it picks for float64 arrays, on the same inputs. Widths are chosen so the vector
 * bodies and the scalar tails both run (37 columns, head dim 20). Tolerance: 2e-5 relative to the
 * largest magnitude of the result, a few float32 ulps after one or two reductions of at most a few
 * hundred terms.
 */
class KernelsTest {
  private static final double TOL = 2e-5;

  /**
   * Head dim 20 (rotary halves of 10), FFN width and vocabulary 37: every kernel runs its vector
   * body and a scalar tail.
   */
  private static final String CONFIG =
      """
      {"architectures": ["LlamaForCausalLM"], "hidden_size": 80, "intermediate_size": 37,
       "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
       "vocab_size": 37, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
       "rope_theta": 500.0, "tie_word_embeddings": false, "attention_bias": false}
      """;

  @TempDir Path tmp;
  private final Random rnd = new Random(5);

  @BeforeAll
  static void theBuildRunsTheVectorKernels() {
    assertThat(Transformer.kernels())
        .as("the test JVM passes --add-modules=jdk.incubator.vector (pom test.argLine)")
        .isEqualTo("vector");
  }

  /**
   * The kernels' own exp: within 2 ulp of the correctly rounded value over the range softmax and
   * sigmoid use, 0 below the float underflow, and every lane bit-equal to the scalar version (the
   * scalar tails and the interpreter must give the lanes' results).
   */
  @Test
  void expIsAccurateAndTheLaneAndScalarVersionsAgreeBitForBit() {
    float[] xs = new float[4096];
    for (int i = 0; i < xs.length; i++) {
      xs[i] = -100f + 190f * i / xs.length;
    }
    INDArray out = Nd4j.create(DataType.FLOAT, xs.length);
    for (int i = 0; i < xs.length; i += 8) {
      var v =
          jdk.incubator.vector.FloatVector.fromArray(
              jdk.incubator.vector.FloatVector.SPECIES_256, xs, i);
      float[] lanes = VectorMath.exp(v).toArray();
      for (int j = 0; j < 8; j++) {
        float x = xs[i + j];
        assertThat(Float.floatToIntBits(lanes[j]))
            .as("lane vs scalar at %s", x)
            .isEqualTo(Float.floatToIntBits(VectorMath.exp(x)));
        out.putScalar(i + j, lanes[j]);
      }
    }
    for (int i = 0; i < xs.length; i++) {
      float x = xs[i];
      float exact = (float) Math.exp(x);
      float got = out.getFloat(i);
      if (x < -87.33654f) {
        assertThat(got).as("exp(%s) underflows", x).isZero();
      } else if (exact >= Float.MIN_NORMAL && x <= 88f) {
        assertThat(Math.abs(got - exact)).as("exp(%s)", x).isLessThanOrEqualTo(2 * Math.ulp(exact));
      }
    }
  }

  @Test
  void rmsNormForwardAndBackward() {
    INDArray x = random(6, 37);
    INDArray w = random(1, 37).reshape(37);
    INDArray dOut = random(6, 37);
    INDArray dx0 = random(6, 37);
    INDArray[] f = {
      f(x), f(w), Nd4j.create(DataType.FLOAT, 6, 1), Nd4j.create(DataType.FLOAT, 6, 37)
    };
    INDArray[] d = {x, w, Nd4j.create(DataType.DOUBLE, 6, 1), Nd4j.create(DataType.DOUBLE, 6, 37)};
    NormKernels normF = ModelKernels.of(config(), DataType.FLOAT).norm();
    NormKernels normD = ModelKernels.of(config(), DataType.DOUBLE).norm();
    normF.forward(f[0], f[1], 1e-5, f[2], f[3]);
    normD.forward(d[0], d[1], 1e-5, d[2], d[3]);
    assertClose(f[3], d[3], "rmsnorm out");
    assertClose(f[2], d[2], "rmsnorm 1/rms");
    INDArray dxF = f(dx0);
    INDArray dxD = dx0.dup();
    normF.backward(f[0], f[1], f[2], f(dOut), scratch(f[0]), scratch(f[0]), dxF);
    normD.backward(d[0], d[1], d[2], dOut, scratch(d[0]), scratch(d[0]), dxD);
    assertClose(dxF, dxD, "rmsnorm dx (accumulated)");
  }

  /**
   * SiLU·up both ways against plain Java in doubles, over three whole {@link VectorMath#CHUNK}s
   * (the row kernels' unit) and a partial one that ends in a scalar tail, split over two threads:
   * sig = σ(g), act = g·sig·u, dUp = dAct·g·sig, dGate = dAct·u·sig·(1 + g·(1 − sig)), each within
   * {@link #TOL} of its largest value.
   */
  @Test
  void siluForwardAndBackwardOverChunkBoundaries() {
    int n = 3 * VectorMath.CHUNK + 77;
    INDArray g = random(n);
    INDArray u = random(n);
    INDArray dAct = random(n);
    INDArray[] out = new INDArray[4]; // sig, act, dGate, dUp
    for (int i = 0; i < out.length; i++) {
      out[i] = Nd4j.create(DataType.FLOAT, n);
    }
    int before = KernelThreads.threads();
    try {
      KernelThreads.set(2);
      VectorSilu silu = new VectorSilu();
      silu.forward(f(g), f(u), out[0], out[1]);
      silu.backward(f(g), f(u), out[0], f(dAct), out[2], out[3]);
    } finally {
      KernelThreads.set(before);
    }
    INDArray[] expected = new INDArray[4];
    for (int i = 0; i < expected.length; i++) {
      expected[i] = Nd4j.create(DataType.DOUBLE, n);
    }
    for (int i = 0; i < n; i++) {
      // the reference reads the same float-rounded inputs the kernel does
      double gi = g.getFloat(i);
      double ui = u.getFloat(i);
      double di = dAct.getFloat(i);
      double sig = 1 / (1 + Math.exp(-gi));
      expected[0].putScalar(i, sig);
      expected[1].putScalar(i, gi * sig * ui);
      expected[2].putScalar(i, di * ui * sig * (1 + gi * (1 - sig)));
      expected[3].putScalar(i, di * gi * sig);
    }
    String[] names = {"sigmoid", "act", "dGate", "dUp"};
    for (int i = 0; i < names.length; i++) {
      assertClose(out[i], expected[i], "silu " + names[i]);
    }
  }

  @Test
  void ropeForwardAndBackward() {
    int hd = 20;
    int rows = 12;
    int[] positions = {0, 1, 2, 3, 7, 8, 9, 10, 11, 12, 40, 41};
    RopeKernels ropeF = ModelKernels.of(new Rope(hd, 10000, DataType.FLOAT), DataType.FLOAT).rope();
    RopeKernels ropeD =
        ModelKernels.of(new Rope(hd, 10000, DataType.DOUBLE), DataType.DOUBLE).rope();
    INDArray cosF = Nd4j.create(DataType.FLOAT, rows, hd);
    INDArray sinF = Nd4j.create(DataType.FLOAT, rows, hd);
    INDArray cosD = Nd4j.create(DataType.DOUBLE, rows, hd);
    INDArray sinD = Nd4j.create(DataType.DOUBLE, rows, hd);
    ropeF.fillTables(positions, 1, cosF, sinF);
    ropeD.fillTables(positions, 1, cosD, sinD);
    INDArray x = random(rows, hd);
    INDArray xF = f(x);
    INDArray xD = x.dup();
    ropeF.forward(xF, cosF, sinF, scratch(xF));
    ropeD.forward(xD, cosD, sinD, scratch(xD));
    assertClose(xF, xD, "rope forward");
    INDArray g = random(rows, hd);
    INDArray gF = f(g);
    INDArray gD = g.dup();
    ropeF.backward(gF, cosF, sinF, scratch(gF), scratch(gF));
    ropeD.backward(gD, cosD, sinD, scratch(gD), scratch(gD));
    assertClose(gF, gD, "rope backward");
  }

  @Test
  void attentionSoftmaxForwardAndBackward() {
    // 2 rows of 9 positions, 4 query heads on 2 kv heads, head dim 20; two packed segments
    ModelConfig c = config();
    int b = 2;
    int t = 9;
    int[] segments = {1, 1, 1, 1, 2, 2, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    int x = b * 2;
    int gt = 2 * t;
    INDArray q = random(x, gt, 20);
    INDArray k = random(x, t, 20);
    INDArray v = random(x, t, 20);
    INDArray dOut = random(x, gt, 20);
    INDArray[] outs = new INDArray[2];
    INDArray[][] grads = new INDArray[2][];
    DataType[] types = {DataType.FLOAT, DataType.DOUBLE};
    for (int i = 0; i < 2; i++) {
      DataType dt = types[i];
      Attention att = new Attention(c, b, t, ModelKernels.of(c, dt));
      INDArray mask = Nd4j.create(dt, x, gt, t);
      att.fillMask(segments, mask);
      INDArray probs = Nd4j.create(dt, x, gt, t);
      INDArray out = Nd4j.create(dt, x, gt, 20);
      att.forward(q.castTo(dt), k.castTo(dt), v.castTo(dt), mask, probs, out);
      INDArray dq = Nd4j.create(dt, x, gt, 20);
      INDArray dk = Nd4j.create(dt, x, t, 20);
      INDArray dv = Nd4j.create(dt, x, t, 20);
      att.backward(
          q.castTo(dt),
          k.castTo(dt),
          v.castTo(dt),
          probs,
          out,
          dOut.castTo(dt),
          Nd4j.create(dt, x, gt, t),
          dq,
          dk,
          dv);
      outs[i] = out;
      grads[i] = new INDArray[] {dq, dk, dv};
    }
    assertClose(outs[0], outs[1], "attention out");
    assertClose(grads[0][0], grads[1][0], "dq");
    assertClose(grads[0][1], grads[1][1], "dk");
    assertClose(grads[0][2], grads[1][2], "dv");
  }

  /**
   * Both head-copy kernels against the index formula, element for element: rows [B·T, H·HD] hold
   * head h of token (b, t) at columns [h·HD, +HD), heads [B, H, T, HD]; and back. B3 T37 H5 HD20 is
   * 11,100 floats per call, so the fused copy runs on one thread, and B3 T137 on two; the rows are
   * a view that starts 3 rows into its buffer.
   */
  @Test
  void headCopiesPlaceEveryElementAndRoundTrip() {
    int before = KernelThreads.threads();
    try {
      KernelThreads.set(2);
      for (int t : new int[] {37, 137}) {
        int b = 3, h = 5, hd = 20;
        INDArray all = f(randomFrom(rnd, b * t + 3, h * hd)); // rows 3.. as a view at an offset
        INDArray rows = all.get(NDArrayIndex.interval(3, 3 + b * t), NDArrayIndex.all());
        float[] r = rows.dup().data().asFloat();
        for (HeadKernels kernels : new HeadKernels[] {new BulkHeads(), new Nd4jHeads()}) {
          String what = kernels.getClass().getSimpleName() + " T" + t;
          INDArray heads = Nd4j.create(DataType.FLOAT, b, h, t, hd);
          kernels.toHeads(rows, heads, b, t, h, hd);
          float[] hs = heads.data().asFloat();
          for (int bi = 0; bi < b; bi++) {
            for (int ti = 0; ti < t; ti++) {
              for (int hi = 0; hi < h; hi++) {
                for (int d = 0; d < hd; d++) {
                  float expected = r[((bi * t + ti) * h + hi) * hd + d];
                  assertThat(hs[((bi * h + hi) * t + ti) * hd + d]).as(what).isEqualTo(expected);
                }
              }
            }
          }
          INDArray back = Nd4j.create(DataType.FLOAT, b * t, h * hd);
          kernels.toRows(heads, back, b, t, h, hd);
          assertThat(back.data().asFloat()).as(what + " back to rows").isEqualTo(r);
        }
      }
    } finally {
      KernelThreads.set(before);
    }
  }

  /**
   * Splitting a kernel's rows over two threads gives the same bits as one thread: the causal
   * softmax and its backward, SiLU·up and its backward, RMSNorm both ways, rotary and the
   * cross-entropy, on arrays large enough to be split (and odd row counts, so the parts differ).
   */
  @Test
  void kernelsGiveTheSameBitsOnOneAndTwoThreads() {
    int before = KernelThreads.threads();
    try {
      java.util.List<java.util.List<float[]>> results = new java.util.ArrayList<>();
      for (int threads : new int[] {1, 2}) {
        KernelThreads.set(threads);
        results.add(runEveryKernel(new Random(11)));
      }
      for (int i = 0; i < results.get(0).size(); i++) {
        assertThat(results.get(1).get(i)).as("output %d", i).isEqualTo(results.get(0).get(i));
      }
    } finally {
      KernelThreads.set(before);
    }
  }

  /** Every row-split kernel on fixed random inputs; returns each output array. */
  private static java.util.List<float[]> runEveryKernel(Random rnd) {
    int t = 131; // softmax rows of 131 positions, 4 heads
    INDArray scores = f(randomFrom(rnd, 4 * t, t));
    INDArray mask = Nd4j.create(DataType.FLOAT, 4 * t, t);
    INDArray dOut = f(randomFrom(rnd, 4 * t, 24));
    INDArray out = f(randomFrom(rnd, 4 * t, 24));
    INDArray dP = f(randomFrom(rnd, 4 * t, t));
    VectorSoftmax softmax = new VectorSoftmax();
    softmax.forward(scores, mask, t);
    softmax.backward(dP, scores, dOut, out, 4 * t, t, 24);
    int n = 3 * VectorMath.CHUNK + 77; // SiLU·up: three whole chunks and a partial one
    INDArray gate = f(randomFrom(rnd, n));
    INDArray up = f(randomFrom(rnd, n));
    INDArray sig = Nd4j.create(DataType.FLOAT, n);
    INDArray act = Nd4j.create(DataType.FLOAT, n);
    INDArray dAct = f(randomFrom(rnd, n));
    INDArray dGate = Nd4j.create(DataType.FLOAT, n);
    INDArray dUp = Nd4j.create(DataType.FLOAT, n);
    VectorSilu silu = new VectorSilu();
    silu.forward(gate, up, sig, act);
    silu.backward(gate, up, sig, dAct, dGate, dUp);
    int rows = 301;
    int cols = 120;
    INDArray x = f(randomFrom(rnd, rows, cols));
    INDArray w = f(randomFrom(rnd, cols));
    INDArray rInv = Nd4j.create(DataType.FLOAT, rows);
    INDArray normed = Nd4j.create(DataType.FLOAT, rows, cols);
    INDArray dNorm = f(randomFrom(rnd, rows, cols));
    INDArray dx = f(randomFrom(rnd, rows, cols));
    VectorNorm norm = new VectorNorm();
    norm.forward(x, w, 1e-5, rInv, normed);
    norm.backward(x, w, rInv, dNorm, null, null, dx);
    INDArray heads = f(randomFrom(rnd, rows * 8, 40));
    INDArray cos = f(randomFrom(rnd, rows * 8, 40));
    INDArray sin = f(randomFrom(rnd, rows * 8, 40));
    new VectorRope(new Rope(40, 10000, DataType.FLOAT)).forward(heads, cos, sin, null);
    int vocab = 1001;
    INDArray logits = f(randomFrom(rnd, rows, vocab));
    int[] targets = new int[rows];
    double[] weight = new double[rows];
    for (int r = 0; r < rows; r++) {
      targets[r] = r % 7 == 0 ? -1 : rnd.nextInt(vocab);
      weight[r] = targets[r] < 0 ? 0 : 1.0 / rows;
    }
    double[] nll = new double[rows];
    double[] invSum = new double[rows];
    VectorLoss loss = new VectorLoss();
    loss.forward(logits, targets, nll, invSum);
    float[] nllF = new float[rows];
    for (int r = 0; r < rows; r++) {
      nllF[r] = (float) nll[r];
    }
    loss.backward(logits, targets, weight, invSum);
    return java.util.List.of(
        floats(scores),
        floats(dP),
        floats(sig),
        floats(act),
        floats(dGate),
        floats(dUp),
        floats(rInv),
        floats(normed),
        floats(dx),
        floats(heads),
        floats(logits),
        nllF);
  }

  private static float[] floats(INDArray a) {
    return a.reshape(a.length()).toFloatVector();
  }

  /**
   * The causal softmax computes each row only up to its own position and zeroes the rest: the
   * attention output, in both dtypes, against a plain-Java attention in doubles, and every
   * probability after a row's position exactly 0. 37 positions, so rows run the vector body and the
   * scalar tail at every split; two packed segments and padding in row 0. Tolerance: {@link #TOL}
   * (float32) and 1e-12 (float64) relative to the largest value.
   */
  @Test
  void causalSoftmaxMatchesAPlainAttention() {
    ModelConfig c = config(); // 4 query heads on 2 kv heads (G = 2), head dim 20
    int b = 2;
    int t = 37;
    int g = 2;
    int hd = 20;
    int[] segments = new int[b * t];
    for (int i = 0; i < t; i++) {
      segments[i] = i < 15 ? 1 : i < 33 ? 2 : 0;
      segments[t + i] = 1;
    }
    int x = b * 2;
    INDArray q = random(x, g * t, hd);
    INDArray k = random(x, t, hd);
    INDArray v = random(x, t, hd);
    INDArray expected = plainAttention(segments, b, t, g, q, k, v);
    for (DataType dt : new DataType[] {DataType.FLOAT, DataType.DOUBLE}) {
      Attention att = new Attention(c, b, t, ModelKernels.of(c, dt));
      INDArray mask = Nd4j.create(dt, x, g * t, t);
      att.fillMask(segments, mask);
      INDArray probs = Nd4j.create(dt, mask.shape()).assign(7); // stale values must not survive
      INDArray out = Nd4j.create(dt, q.shape());
      att.forward(q.castTo(dt), k.castTo(dt), v.castTo(dt), mask, probs, out);
      assertClose(out, expected, dt + " attention out", dt == DataType.FLOAT ? TOL : 1e-12);
      INDArray rows = probs.reshape((long) x * g * t, t);
      for (int r = 0; r < x * g * t; r++) {
        int i = r % t;
        double after =
            i + 1 == t ? 0 : rows.get(point(r), interval(i + 1, t)).amaxNumber().doubleValue();
        assertThat(after).as("%s row %d (position %d) after its position", dt, r, i).isZero();
      }
    }
  }

  /**
   * Plain-Java causal attention in doubles: query row {@code h*T + i} of {@code [x, g*T, HD]}
   * attends to the positions j &lt;= i of its own non-zero segment (itself only when padding).
   */
  private static INDArray plainAttention(
      int[] segments, int b, int t, int g, INDArray q, INDArray k, INDArray v) {
    int xs = (int) q.size(0);
    int kvHeads = xs / b;
    int hd = (int) q.size(2);
    double scale = 1.0 / Math.sqrt(hd);
    double[] out = new double[xs * t * g * hd];
    for (int x = 0; x < xs; x++) {
      int r = x / kvHeads;
      for (int i = 0; i < t; i++) {
        int si = segments[r * t + i];
        for (int h = 0; h < g; h++) {
          int row = h * t + i;
          double[] w = new double[t];
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j <= i; j++) {
            if (j == i || (si != 0 && segments[r * t + j] == si)) {
              double dot = 0;
              for (int d = 0; d < hd; d++) {
                dot += q.getDouble(x, row, d) * k.getDouble(x, j, d);
              }
              w[j] = dot * scale;
              max = Math.max(max, w[j]);
            } else {
              w[j] = Double.NaN; // not attended
            }
          }
          double sum = 0;
          for (int j = 0; j <= i; j++) {
            w[j] = Double.isNaN(w[j]) ? 0 : Math.exp(w[j] - max);
            sum += w[j];
          }
          for (int d = 0; d < hd; d++) {
            double o = 0;
            for (int j = 0; j <= i; j++) {
              o += w[j] / sum * v.getDouble(x, j, d);
            }
            out[((x * g + h) * t + i) * hd + d] = o;
          }
        }
      }
    }
    return Nd4j.createFromArray(out).reshape(xs, (long) g * t, hd);
  }

  @Test
  void lossAndItsGradientOverTheVocabulary() {
    // two loss groups, one padded row, first positions unscored; logits set directly after a
    // forward pass, so loss() and the first step of backward() see the same values in both dtypes
    Path dir = TestModels.writeRandom(tmp, CONFIG, 3);
    java.util.List<int[]> ids = java.util.List.of(new int[] {1, 2, 3, 4, 5}, new int[] {6, 7, 8});
    java.util.List<int[]> labels =
        java.util.List.of(new int[] {Batch.IGNORE, 2, 3, 4, 5}, new int[] {6, 7, 8});
    Batch batch = Batch.padded(ids, labels, 0, new int[] {0, 1}, 2, 5);
    INDArray logits = random(10, 37).muli(6);
    double[][] loss = new double[2][];
    INDArray[] grad = new INDArray[2];
    DataType[] types = {DataType.FLOAT, DataType.DOUBLE};
    for (int i = 0; i < 2; i++) {
      Transformer model = new Transformer(CheckpointLoader.load(dir, types[i]));
      Workspace ws = model.newWorkspace(2, 5);
      model.forward(batch, Adapters.NONE, ws);
      ws.logits.assign(logits.castTo(types[i]));
      LossStats stats = model.loss(batch, ws);
      loss[i] = stats.nllSums();
      assertThat(stats.counts()).containsExactly(4, 2);
      model.backward(batch, Adapters.NONE, ws, stats);
      grad[i] = ws.logits.dup(); // dLoss/dlogits
    }
    for (int g = 0; g < 2; g++) {
      assertThat(loss[0][g])
          .as("group %d nll sum", g)
          .isCloseTo(loss[1][g], within(1e-5 * Math.abs(loss[1][g])));
    }
    assertClose(grad[0], grad[1], "dLoss/dlogits");
    for (int unscored : new int[] {4, 7, 8, 9}) { // row 0's last position, row 1's padding
      assertThat(grad[0].getRow(unscored).norm1Number().doubleValue())
          .as("row %d", unscored)
          .isZero();
      assertThat(grad[1].getRow(unscored).norm1Number().doubleValue())
          .as("row %d", unscored)
          .isZero();
    }
  }

  /**
   * A whole LoRA training step (every projection adapted) in float32 on the kernels against the
   * same step in float64 on ND4J: loss and every A and B gradient. Tolerance 1e-4 of the largest
   * gradient: float32 rounding through two layers, the softmax over the vocabulary and the GEMMs.
   */
  @Test
  void aLoraStepInFloatMatchesTheStepInDouble() {
    Path dir = TestModels.writeRandom(tmp, CONFIG, 4);
    LoraStep f = loraStep(dir, DataType.FLOAT, model -> model.newWorkspace(2, 8));
    LoraStep d = loraStep(dir, DataType.DOUBLE, model -> model.newWorkspace(2, 8));
    assertThat(f.loss).isCloseTo(d.loss, within(1e-5 * d.loss));
    for (int p = 0; p < d.grads.size(); p++) {
      assertClose(f.grads.get(p), d.grads.get(p), "gradient " + p, 1e-4);
    }
  }

  /**
   * The seam: a workspace picks its kernels once from its dtype (fused for float32, ND4J for
   * float64), and a float32 workspace given the ND4J kernels runs the same LoRA step as the fused
   * ones to float32 rounding (the kernels' own exp and the sums' order): loss within 1e-6 relative,
   * every gradient within {@link #TOL} of the largest.
   */
  @Test
  void aFloatStepOnTheNd4jKernelsMatchesTheFusedOnes() {
    Path dir = TestModels.writeRandom(tmp, CONFIG, 4);
    ModelConfig c = config();
    assertThat(new Workspace(c, DataType.FLOAT, 1, 4, false).kernels.norm())
        .as("float32 workspaces run the fused kernels")
        .isInstanceOf(VectorNorm.class);
    assertThat(new Workspace(c, DataType.DOUBLE, 1, 4, false).kernels.softmax())
        .as("float64 workspaces run the ND4J kernels")
        .isInstanceOf(Nd4jSoftmax.class);
    LoraStep fused = loraStep(dir, DataType.FLOAT, model -> model.newWorkspace(2, 8));
    ModelKernels nd4j =
        ModelKernels.nd4j(new Rope(c.headDim(), c.ropeTheta(), DataType.FLOAT), DataType.FLOAT);
    LoraStep reference =
        loraStep(
            dir,
            DataType.FLOAT,
            model -> new Workspace(c, DataType.FLOAT, 2, 8, false, nd4j, BatchedGemms.perMatrix()));
    assertThat(fused.loss).isCloseTo(reference.loss, within(1e-6 * reference.loss));
    for (int p = 0; p < reference.grads.size(); p++) {
      assertClose(fused.grads.get(p), reference.grads.get(p), "gradient " + p, TOL);
    }
  }

  private record LoraStep(double loss, java.util.List<INDArray> grads) {}

  /**
   * One forward, loss and backward of a LoRA adapter on every projection (B set to random values,
   * so every gradient is non-zero), in {@code dt} on the workspace {@code workspace} makes.
   */
  private static LoraStep loraStep(
      Path dir, DataType dt, java.util.function.Function<Transformer, Workspace> workspace) {
    java.util.List<int[]> ids =
        java.util.List.of(new int[] {3, 1, 4, 1, 5, 9, 2, 6}, new int[] {5, 3, 5, 8, 9});
    Batch batch = Batch.padded(ids, null, 0);
    java.util.List<Projection> all = java.util.Arrays.asList(Projection.values());
    io.loraspark.train.lora.LoraConfig lora =
        new io.loraspark.train.lora.LoraConfig(4, 8.0, 0.0, all, false);
    ModelWeights base = CheckpointLoader.load(dir, dt);
    io.loraspark.train.lora.LoraWeights w =
        io.loraspark.train.lora.LoraWeights.init(base, lora, 7, dt);
    Random bRnd = new Random(8);
    for (io.loraspark.train.lora.LoraWeights.Module m : w.modules()) {
      m.b().assign(randomFrom(bRnd, m.b().shape()).muli(0.3).castTo(dt));
    }
    Transformer model = new Transformer(base);
    Workspace ws = workspace.apply(model);
    io.loraspark.train.lora.FusedLora fused = io.loraspark.train.lora.FusedLora.inference(w);
    model.forward(batch, fused, ws);
    LossStats stats = model.loss(batch, ws);
    model.backward(batch, fused, ws, stats);
    return new LoraStep(
        stats.nllSums()[0], w.trainables().stream().map(t -> t.grad().dup()).toList());
  }

  private static ModelConfig config() {
    try {
      return ModelConfig.fromJson(
          new com.fasterxml.jackson.databind.ObjectMapper().readTree(CONFIG));
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private INDArray random(long... shape) {
    return randomFrom(rnd, shape);
  }

  private static INDArray randomFrom(Random rnd, long... shape) {
    double[] v = new double[(int) java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b)];
    for (int i = 0; i < v.length; i++) {
      v[i] = rnd.nextGaussian();
    }
    return Nd4j.createFromArray(v).reshape(shape);
  }

  private static org.nd4j.linalg.indexing.INDArrayIndex point(long i) {
    return NDArrayIndex.point(i);
  }

  private static org.nd4j.linalg.indexing.INDArrayIndex interval(long from, long to) {
    return NDArrayIndex.interval(from, to);
  }

  private static INDArray f(INDArray a) {
    return a.castTo(DataType.FLOAT);
  }

  private static INDArray scratch(INDArray like) {
    return Nd4j.create(like.dataType(), like.shape());
  }

  private static void assertClose(INDArray actual, INDArray expected, String what) {
    assertClose(actual, expected, what, TOL);
  }

  private static void assertClose(INDArray actual, INDArray expected, String what, double tol) {
    double[] a = actual.castTo(DataType.DOUBLE).data().asDouble();
    double[] e = expected.castTo(DataType.DOUBLE).data().asDouble();
    double scale = 0;
    for (double v : e) {
      scale = Math.max(scale, Math.abs(v));
    }
    double worst = 0;
    for (int i = 0; i < e.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - e[i]));
    }
    assertThat(worst)
        .as("%s: max |actual - expected| against scale %.3g", what, scale)
        .isLessThanOrEqualTo(tol * Math.max(scale, 1e-3));
  }
}
