package io.loraspark.train.lora;

import static io.loraspark.train.lora.DenseReference.gaussian;
import static io.loraspark.train.lora.DenseReference.matmulT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Children on a frozen parent chain of depth 2 with mixed methods (a DoRA grandparent, a LoRA
 * parent), in double on the random 2-layer GQA model with q, k, v biases: the chain's forward
 * against the dense weight its nodes stand for, built in scalar loops, and the children's gradients
 * (a LoRA child with dropout, a VeRA child, beside a root LoRA adapter in the same fused step)
 * against central finite differences.
 */
class ChainGradientTest {
  static final List<Projection> ALL = Arrays.asList(Projection.values());

  @TempDir Path tmp;

  /** DoRA grandparent (rank 2) ← LoRA parent (rank 3, rsLoRA), both moved off their init. */
  static List<LoraWeights> nodes(ModelWeights base) {
    LoraWeights grandparent =
        LoraFamilyGradientTest.movedDora(
            base, new LoraConfig(2, 3, 0, ALL, false, LoraMethod.DORA), 31);
    LoraWeights parent =
        FusedStep.randomB(
            LoraWeights.init(base, new LoraConfig(3, 5, 0, ALL, true), 32, base.embed().dataType()),
            new Random(33));
    return List.of(grandparent, parent);
  }

  @Test
  void theChainsForwardIsTheDenseWeightOfItsNodesPlusTheBias() {
    ModelWeights base = FusedStep.randomBase(tmp);
    List<LoraWeights> nodes = nodes(base);
    FrozenChain chain = FrozenChain.of(nodes, List.of("gp", "p"), base, DataType.DOUBLE);
    LoraWeights child =
        LoraWeights.init(
            base,
            new LoraConfig(2, 4, 0, ALL, false),
            34,
            DataType.DOUBLE); // B = 0: the child adds nothing
    FusedLora fused = FusedLora.inference(child, chain);
    Random rnd = new Random(35);
    LoraWeights gp = nodes.get(0);
    LoraWeights p = nodes.get(1);
    for (LoraWeights.Module pm : p.modules()) {
      LoraWeights.Module gm = gp.module(pm.layer(), pm.proj());
      double[][] w0 =
          LoraWeights.frozenWeight(base, pm.layer(), pm.proj(), DataType.DOUBLE).toDoubleMatrix();
      double[][] w1 =
          LoraFamilyGradientTest.naiveDoraWeight(
              w0,
              gm.b().toDoubleMatrix(),
              gm.a().toDoubleMatrix(),
              gm.state(DoraState.class).magnitude().toDoubleVector(),
              gp.scaling(gm));
      double[][] w2 = plus(w1, pm.b().toDoubleMatrix(), pm.a().toDoubleMatrix(), p.scaling(pm));
      double[] bias = bias(base, pm);
      double[][] x = gaussian(rnd, 4, w0[0].length);
      double[][] y0 = matmulT(x, w0);
      double[][] expected = matmulT(x, w2);
      INDArray y = Nd4j.createFromArray(y0);
      for (int r = 0; r < x.length; r++) {
        for (int o = 0; o < bias.length; o++) {
          y.putScalar(r, o, y0[r][o] + bias[o]);
        }
      }
      fused.forward(pm.layer(), pm.proj(), Nd4j.createFromArray(x), y);
      for (int r = 0; r < x.length; r++) {
        for (int o = 0; o < bias.length; o++) {
          double want = expected[r][o] + bias[o];
          assertThat(y.getDouble(r, o))
              .as("%s row %d out %d", pm.name(), r, o)
              .isCloseTo(want, within(1e-12 * Math.max(1, Math.abs(want))));
        }
      }
    }
  }

  @Test
  void childrenOnAMixedChainOfDepthTwoHaveFiniteDifferenceGradients() {
    ModelWeights base = FusedStep.randomBase(tmp);
    FrozenChain chain = FrozenChain.of(nodes(base), List.of("gp", "p"), base, DataType.DOUBLE);
    Random rnd = new Random(36);
    List<LoraWeights> adapters = new ArrayList<>();
    adapters.add(FusedStep.plainLora(base, ALL, 37, rnd)); // dropout 0.3, on the chain
    adapters.add(
        VeraAdaLoraGradientTest.movedVera(
            base, new LoraConfig(2, 1, 0, ALL, false, LoraMethod.VERA), 38)); // on the chain
    adapters.add(FusedStep.plainLora(base, ALL, 39, rnd)); // a root beside them
    List<FrozenChain> chains = Arrays.asList(chain, chain, null);
    FusedStep step = FusedStep.run(base, adapters, chains, rnd, 6, 1, 700, 19);
    int checked = step.checkLayerZero(rnd, 1e-6, FusedStep.NO_CORRECTION);
    // per layer-0 module: LoRA A, B; VeRA λ_b, λ_d; root LoRA A, B
    assertThat(checked).as("entries checked").isEqualTo(7 * (2 + 2 + 2));
  }

  /** w + s·b·a in scalar loops. */
  static double[][] plus(double[][] w, double[][] b, double[][] a, double s) {
    double[][] out = new double[w.length][w[0].length];
    for (int o = 0; o < w.length; o++) {
      for (int i = 0; i < w[0].length; i++) {
        double v = w[o][i];
        for (int r = 0; r < a.length; r++) {
          v += s * b[o][r] * a[r][i];
        }
        out[o][i] = v;
      }
    }
    return out;
  }

  private static double[] bias(ModelWeights base, LoraWeights.Module m) {
    var l = base.layers().get(m.layer());
    INDArray b =
        switch (m.proj()) {
          case Q -> l.bq();
          case K -> l.bk();
          case V -> l.bv();
          case O -> l.bo();
          case GATE -> l.bGate();
          case UP -> l.bUp();
          case DOWN -> l.bDown();
        };
    return b == null ? new double[(int) m.b().rows()] : b.toDoubleVector();
  }
}
