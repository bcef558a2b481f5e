package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Aggregating data-parallel replicas: ΔW = Σ w_r s_r B_r A_r, re-factorised by truncated SVD.
 * Reference values come from an SVD of the full [out, in] sum (not the QR route the class takes).
 */
class ReplicaAggregationTest {

  static final List<Projection> ALL = List.of(Projection.values());
  static final double[] WEIGHTS = {0.5, 0.3, 0.2};
  static final int RANK = 2;

  @TempDir Path tmp;

  @ParameterizedTest(name = "rsLora={0}")
  @ValueSource(booleans = {false, true})
  void fullRankAggregateEqualsWeightedSumOfDeltas(boolean rsLora) {
    ModelConfig model = LoraTestModels.smallLlama();
    List<LoraWeights> replicas = replicas(model, config(RANK, rsLora), DataType.DOUBLE);

    LoraWeights agg = ReplicaAggregation.aggregate(replicas, WEIGHTS, 3 * RANK);

    assertThat(agg.config().rank()).as("target rank").isEqualTo(3 * RANK);
    assertThat(agg.config().alpha()).as("alpha kept").isEqualTo(replicas.get(0).config().alpha());
    assertThat(agg.config().rsLora()).as("rsLora kept").isEqualTo(rsLora);
    assertThat(agg.modules()).hasSameSizeAs(replicas.get(0).modules());
    for (LoraWeights.Module m : agg.modules()) {
      INDArray exact = weightedSum(replicas, WEIGHTS, m);
      INDArray got = ReplicaAggregation.delta(agg, m);
      assertThat(relative(got, exact))
          .as("relative error of s'B'A' for %s", m.name())
          .isLessThan(1e-10);
      assertThat(m.a().shape())
          .as("A' shape of %s", m.name())
          .containsExactly(3 * RANK, m.a().columns());
    }
  }

  @Test
  void truncatedAggregateHasTheOptimalRankTwoError() {
    ModelConfig model = LoraTestModels.smallLlama();
    List<LoraWeights> replicas = replicas(model, config(RANK, false), DataType.DOUBLE);

    LoraWeights agg = ReplicaAggregation.aggregate(replicas, WEIGHTS, RANK);

    for (LoraWeights.Module m : agg.modules()) {
      INDArray exact = weightedSum(replicas, WEIGHTS, m);
      double[] sigma = singularValues(exact);
      double discarded = 0; // Eckart–Young: ‖ΔW − best rank-2‖²_F = Σ_{i ≥ 2} σ_i²
      for (int i = RANK; i < sigma.length; i++) {
        discarded += sigma[i] * sigma[i];
      }
      double total = exact.norm2Number().doubleValue();
      double err = ReplicaAggregation.delta(agg, m).sub(exact).norm2Number().doubleValue();
      assertThat(discarded / (total * total))
          .as("%s: the sum has rank > 2, so truncation must lose something", m.name())
          .isGreaterThan(1e-4);
      assertThat(Math.abs(err * err - discarded) / (total * total))
          .as("%s: squared error %s vs discarded σ² %s", m.name(), err * err, discarded)
          .isLessThan(1e-8);
      assertThat(relative(ReplicaAggregation.delta(agg, m), bestRankK(exact, RANK)))
          .as("%s equals the best rank-2 approximation from a full SVD", m.name())
          .isLessThan(1e-8);
    }
  }

  @Test
  void averagingAAndBSeparatelyGivesAWrongDelta() {
    ModelConfig model = LoraTestModels.smallLlama();
    List<LoraWeights> replicas = replicas(model, config(RANK, false), DataType.DOUBLE);
    double s = replicas.get(0).config().scaling();

    for (LoraWeights.Module m : replicas.get(0).modules()) {
      INDArray meanA = Nd4j.zeros(DataType.DOUBLE, m.a().shape());
      INDArray meanB = Nd4j.zeros(DataType.DOUBLE, m.b().shape());
      for (int r = 0; r < replicas.size(); r++) {
        LoraWeights.Module rm = replicas.get(r).module(m.layer(), m.proj());
        meanA.addi(rm.a().mul(WEIGHTS[r]));
        meanB.addi(rm.b().mul(WEIGHTS[r]));
      }
      INDArray naive = meanB.mmul(meanA).muli(s);
      assertThat(relative(naive, weightedSum(replicas, WEIGHTS, m)))
          .as("%s: mean(B)·mean(A) is far from the mean of B·A", m.name())
          .isGreaterThan(0.5);
    }
  }

  @Test
  void moreReplicaRanksThanOutputFeaturesStayExact() {
    // K and V have out = 8 < 5 replicas × rank 2 = 10 stacked columns: the stacked B needs no QR
    // reduction, and rank 10 exceeds min(out, in), so the extra components are zero.
    ModelConfig model = LoraTestModels.smallLlama();
    LoraConfig kv = new LoraConfig(RANK, 4, 0.0, List.of(Projection.K, Projection.V), false);
    List<LoraWeights> replicas = new java.util.ArrayList<>();
    for (int r = 0; r < 5; r++) {
      replicas.add(replica(model, kv, DataType.DOUBLE, 100 + r));
    }
    double[] weights = {0.1, 0.2, 0.3, 0.25, 0.15};

    LoraWeights agg = ReplicaAggregation.aggregate(replicas, weights, 10);

    for (LoraWeights.Module m : agg.modules()) {
      assertThat(m.b().shape()).as("B' of %s", m.name()).containsExactly(8, 10);
      assertThat(relative(ReplicaAggregation.delta(agg, m), weightedSum(replicas, weights, m)))
          .as("relative error of %s", m.name())
          .isLessThan(1e-10);
    }
  }

  @Test
  void zeroWeightReplicasDoNotContribute() {
    ModelConfig model = LoraTestModels.smallLlama();
    List<LoraWeights> replicas = replicas(model, config(RANK, false), DataType.DOUBLE);

    LoraWeights agg = ReplicaAggregation.aggregate(replicas, new double[] {0, 1, 0}, RANK);

    for (LoraWeights.Module m : agg.modules()) {
      INDArray expected =
          ReplicaAggregation.delta(replicas.get(1), replicas.get(1).module(m.layer(), m.proj()));
      assertThat(relative(ReplicaAggregation.delta(agg, m), expected))
          .as("single replica %s reproduced", m.name())
          .isLessThan(1e-10);
    }
  }

  @Test
  void floatReplicasAggregateToAFloatAdapterThatRoundTripsThroughPeft() {
    ModelConfig model = LoraTestModels.smallLlama();
    List<LoraWeights> replicas = replicas(model, config(RANK, false), DataType.FLOAT);

    LoraWeights agg = ReplicaAggregation.aggregate(replicas, WEIGHTS, 3 * RANK);
    Path dir = tmp.resolve("aggregated");
    PeftAdapter.save(dir, agg, "base");
    LoraWeights back = PeftAdapter.load(dir, model, DataType.FLOAT);

    assertThat(back.config().rank()).as("saved rank").isEqualTo(3 * RANK);
    for (LoraWeights.Module m : back.modules()) {
      assertThat(m.a().dataType()).isEqualTo(DataType.FLOAT);
      assertThat(relative(ReplicaAggregation.delta(back, m), weightedSum(replicas, WEIGHTS, m)))
          .as("float round trip of %s", m.name())
          .isLessThan(1e-5);
    }
  }

  @Test
  void rejectsBadWeights() {
    List<LoraWeights> replicas =
        replicas(LoraTestModels.smallLlama(), config(RANK, false), DataType.DOUBLE);

    assertThatThrownBy(
            () -> ReplicaAggregation.aggregate(replicas, new double[] {0.5, 0.3, 0.1}, 2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("must sum to 1 but sum to 0.9");
    assertThatThrownBy(
            () -> ReplicaAggregation.aggregate(replicas, new double[] {1.2, 0.3, -0.5}, 2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("weight of replica 2 must be finite and >= 0 but was -0.5");
    assertThatThrownBy(() -> ReplicaAggregation.aggregate(replicas, new double[] {0.5, 0.5}, 2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("2 weights for 3 replicas");
    assertThatThrownBy(() -> ReplicaAggregation.aggregate(List.of(), new double[0], 2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("at least one replica");
    assertThatThrownBy(() -> ReplicaAggregation.aggregate(replicas, WEIGHTS, 0))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("targetRank must be > 0 but was 0");
  }

  @Test
  void rejectsReplicasOfDifferentModelsOrTargets() {
    ModelConfig model = LoraTestModels.smallLlama();
    LoraWeights a = LoraTestModels.adapter(model, config(RANK, false), 1);
    LoraWeights otherTargets =
        LoraTestModels.adapter(
            model, LoraTestModels.lora(RANK, 4, List.of(Projection.Q, Projection.V)), 2);
    ModelConfig tied =
        LoraTestModels.parse(LoraTestModels.configJson("LlamaForCausalLM", true, false));
    LoraWeights otherModel = LoraTestModels.adapter(tied, config(RANK, false), 3);
    double[] half = {0.5, 0.5};

    assertThatThrownBy(() -> ReplicaAggregation.aggregate(List.of(a, otherTargets), half, 2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("replica 1 targets [Q, V]");
    assertThatThrownBy(() -> ReplicaAggregation.aggregate(List.of(a, otherModel), half, 2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("replica 1 was trained on model");
  }

  // --- helpers ---

  static LoraConfig config(int rank, boolean rsLora) {
    return new LoraConfig(rank, 2.0 * rank, 0.0, ALL, rsLora);
  }

  /** Three replicas with PEFT-initialised A and N(0, 0.05) B, each from its own seed. */
  static List<LoraWeights> replicas(ModelConfig model, LoraConfig config, DataType dt) {
    return List.of(
        replica(model, config, dt, 11),
        replica(model, config, dt, 22),
        replica(model, config, dt, 33));
  }

  static LoraWeights replica(ModelConfig model, LoraConfig config, DataType dt, long seed) {
    LoraWeights w = LoraWeights.init(model, config, seed, dt);
    Random rnd = new Random(seed + 1);
    for (LoraWeights.Module m : w.modules()) {
      double[] v = new double[(int) m.b().length()];
      for (int i = 0; i < v.length; i++) {
        v[i] = 0.05 * rnd.nextGaussian();
      }
      m.b().assign(Nd4j.create(v, m.b().shape(), DataType.DOUBLE).castTo(dt));
    }
    return w;
  }

  /** Σ_r w_r · s_r · B_r A_r for the module at m's (layer, proj), in double: [out, in]. */
  static INDArray weightedSum(List<LoraWeights> replicas, double[] weights, LoraWeights.Module m) {
    INDArray sum = null;
    for (int r = 0; r < replicas.size(); r++) {
      LoraWeights w = replicas.get(r);
      INDArray d = ReplicaAggregation.delta(w, w.module(m.layer(), m.proj())).muli(weights[r]);
      sum = sum == null ? d : sum.addi(d);
    }
    return sum;
  }

  static double relative(INDArray got, INDArray expected) {
    return got.sub(expected).norm2Number().doubleValue() / expected.norm2Number().doubleValue();
  }

  /** Full LAPACK SVD of x [m, n]: {u [m, m], sigma [min], vt [n, n]}. */
  static INDArray[] fullSvd(INDArray x) {
    long m = x.rows();
    long n = x.columns();
    INDArray sigma = Nd4j.create(DataType.DOUBLE, Math.min(m, n));
    INDArray u = Nd4j.create(DataType.DOUBLE, new long[] {m, m}, 'f');
    INDArray vt = Nd4j.create(DataType.DOUBLE, new long[] {n, n}, 'f');
    Nd4j.getBlasWrapper().lapack().gesvd(x.dup('f'), sigma, u, vt);
    return new INDArray[] {u, sigma, vt};
  }

  static double[] singularValues(INDArray x) {
    double[] sigma = fullSvd(x)[1].toDoubleVector();
    for (int i = 1; i < sigma.length; i++) {
      assertThat(sigma[i])
          .as("descending σ %s", Arrays.toString(sigma))
          .isLessThanOrEqualTo(sigma[i - 1]);
    }
    return sigma;
  }

  /** Σ_{i < k} σ_i u_i v_iᵀ, built column by column. */
  static INDArray bestRankK(INDArray x, int k) {
    INDArray[] usv = fullSvd(x);
    INDArray out = Nd4j.zeros(DataType.DOUBLE, x.shape());
    for (int i = 0; i < k; i++) {
      INDArray u = usv[0].getColumn(i).reshape(x.rows(), 1);
      INDArray v = usv[2].getRow(i).reshape(1, x.columns());
      out.addi(u.mmul(v).muli(usv[1].getDouble(i)));
    }
    return out;
  }
}
