package io.loraspark.train.lora;

import io.loraspark.train.model.ModelConfig;
import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * Combines data-parallel replicas of one adapter configuration, each trained on its own shards,
 * into one adapter exactly: per module the weight update is {@code ΔW = Σ_r w_r · s_r · B_r A_r}
 * (never the product of averaged A and B, which adds cross terms {@code B_i A_j}), re-factorised
 * into rank {@code k} by truncated SVD, which by Eckart–Young is the best rank-k approximation in
 * Frobenius norm. With {@code k ≥ Σ_r rank_r} the result is exact.
 *
 * <p>The SVD never forms the [out, in] product. With {@code B̂ = [w_1 s_1 B_1 | … ]} [out, P] and
 * {@code Â = [A_1; …]} [P, in], P = Σ rank_r, thin QR factorisations {@code B̂ = Q_b R_b} and
 * {@code Âᵀ = Q_a R_a} give {@code ΔW = Q_b (R_b R_aᵀ) Q_aᵀ}, so only the small core R_b R_aᵀ [P,
 * P] needs an SVD: O((out + in)·P²) instead of O(out·in·min(out, in)). QR and SVD run in double
 * through LAPACK (ND4J's {@code geqrf} and {@code gesvd}); ND4J's {@code Qr} custom op is not used
 * because in 1.0.0-M2.1 it returns NaN for a zero matrix and wrong factors for a wide one.
 */
public final class ReplicaAggregation {

  /** How far the replica weights may sum from 1. */
  public static final double WEIGHT_SUM_TOLERANCE = 1e-9;

  private ReplicaAggregation() {}

  /**
   * The aggregated adapter.
   *
   * @param replicas adapters of the same base model and adapted modules (their ranks and alphas may
   *     differ, per module too; each module contributes with its own scaling, {@link
   *     LoraWeights#scaling}); not modified
   * @param weights w_r per replica, each ≥ 0, summing to 1 (e.g. each replica's share of the
   *     training tokens)
   * @param targetRank k, the rank of the result; {@code ≥ Σ rank_r} keeps ΔW exactly (extra
   *     components are zero), smaller keeps its k largest singular directions
   * @return a new adapter with replica 0's config except {@code rank = targetRank} and no rank or
   *     alpha pattern (so its scaling s' is alpha / k, or alpha / √k with rsLoRA, on every module;
   *     its layer selection is kept) and {@code s'·B'·A'} equal to the truncated ΔW, split evenly:
   *     {@code B' = U_k √Σ_k / √s'} [out, k], {@code A' = √Σ_k V_kᵀ / √s'} [k, in]; in replica 0's
   *     data type, rounded once from double; gradients zero
   * @throws IllegalArgumentException if there are no replicas, the weights are not one per replica,
   *     non-negative and summing to 1, the replicas differ in base model or adapted modules, or
   *     {@code targetRank < 1}
   */
  public static LoraWeights aggregate(
      List<LoraWeights> replicas, double[] weights, int targetRank) {
    checkWeights(replicas, weights);
    checkCompatible(replicas);
    ModelConfig.require(targetRank > 0, "targetRank must be > 0 but was %d", targetRank);
    LoraWeights first = replicas.get(0);
    LoraConfig c = first.config();
    LoraConfig outConfig =
        new LoraConfig(
            targetRank,
            c.alpha(),
            c.dropout(),
            c.targets(),
            c.rsLora(),
            LoraMethod.LORA,
            c.selection().withoutPatterns());
    DataType dt = first.modules().iterator().next().a().dataType();
    LoraWeights out = LoraWeights.zeros(first.model(), outConfig, dt);
    for (LoraWeights.Module m : out.modules()) {
      List<INDArray> scaledB = new ArrayList<>(); // each [out, r_i], times w_i·s_i
      List<INDArray> a = new ArrayList<>(); // each [r_i, in]
      for (int i = 0; i < replicas.size(); i++) {
        if (weights[i] == 0) {
          continue;
        }
        LoraWeights replica = replicas.get(i);
        LoraWeights.Module rm = replica.module(m.layer(), m.proj());
        scaledB.add(toDouble(rm.b()).muli(weights[i] * replica.scaling(rm)));
        a.add(toDouble(rm.a()));
      }
      INDArray stackedB = Nd4j.hstack(scaledB.toArray(INDArray[]::new)); // [out, P]
      INDArray stackedA = Nd4j.vstack(a.toArray(INDArray[]::new)); // [P, in]
      Factors f = refactor(stackedB, stackedA, targetRank, out.scaling(m));
      m.b().assign(f.b().castTo(dt));
      m.a().assign(f.a().castTo(dt));
    }
    return out;
  }

  /**
   * One module's weight update {@code s·B·A}, s = {@code w.scaling(m)}.
   *
   * @param m a module of {@code w}
   * @return a new double array [out, in]
   */
  public static INDArray delta(LoraWeights w, LoraWeights.Module m) {
    return toDouble(m.b()).mmul(toDouble(m.a())).muli(w.scaling(m));
  }

  /**
   * B' [out, k] and A' [k, in] with {@code s'·B'·A'} the best rank-k approximation of {@code
   * stackedB·stackedA} [out, in].
   */
  static Factors refactor(INDArray stackedB, INDArray stackedA, int k, double outScaling) {
    ThinQr qb = thinQr(stackedB); // Q_b [out, kb], R_b [kb, P]
    ThinQr qa = thinQr(stackedA.transpose()); // Q_a [in, ka], R_a [ka, P]
    Svd core = svd(qb.r().mmul(qa.r().transpose())); // of [kb, ka]
    int keep = Math.min(k, (int) core.sigma().length());
    INDArray b = Nd4j.zeros(DataType.DOUBLE, stackedB.rows(), k); // [out, k]
    INDArray a = Nd4j.zeros(DataType.DOUBLE, k, stackedA.columns()); // [k, in]
    if (keep > 0) {
      INDArray roots = // [keep]: √(σ_i / s')
          Transforms.sqrt(core.sigma().get(NDArrayIndex.interval(0, keep)).div(outScaling), false);
      INDArray u = qb.q().mmul(core.u().get(NDArrayIndex.all(), NDArrayIndex.interval(0, keep)));
      INDArray v =
          qa.q()
              .mmul(core.vt().get(NDArrayIndex.interval(0, keep), NDArrayIndex.all()).transpose());
      b.get(NDArrayIndex.all(), NDArrayIndex.interval(0, keep)).assign(u.mulRowVector(roots));
      a.get(NDArrayIndex.interval(0, keep), NDArrayIndex.all())
          .assign(v.mulRowVector(roots).transpose());
    }
    return new Factors(b, a, core.sigma());
  }

  /**
   * b [out, k], a [k, in]; sigma: every singular value of the factored product, descending (the
   * first k kept, the rest cut).
   */
  record Factors(INDArray b, INDArray a, INDArray sigma) {}

  /** q [n, kq] with orthonormal columns and r [kq, p], q·r = the factored [n, p] matrix. */
  private record ThinQr(INDArray q, INDArray r) {}

  /** u [m, m], sigma [min(m, n)] descending, vt [n, n]. */
  record Svd(INDArray u, INDArray sigma, INDArray vt) {}

  /**
   * Thin QR of {@code x} [n, p] through LAPACK geqrf; when p ≥ n there is nothing to reduce and Q
   * is the identity.
   */
  private static ThinQr thinQr(INDArray x) {
    long n = x.rows();
    long p = x.columns();
    if (p >= n) {
      return new ThinQr(Nd4j.eye(n).castTo(DataType.DOUBLE), x);
    }
    INDArray q = x.dup('f'); // overwritten with Q [n, p]
    INDArray r = Nd4j.create(DataType.DOUBLE, new long[] {p, p}, 'f');
    Nd4j.getBlasWrapper().lapack().geqrf(q, r);
    return new ThinQr(q, r);
  }

  /** Full SVD of {@code x} [m, n] through LAPACK gesvd, in double. */
  static Svd svd(INDArray x) {
    long m = x.rows();
    long n = x.columns();
    INDArray work = x.dup('f'); // destroyed by gesvd
    INDArray sigma = Nd4j.create(DataType.DOUBLE, Math.min(m, n));
    INDArray u = Nd4j.create(DataType.DOUBLE, new long[] {m, m}, 'f');
    INDArray vt = Nd4j.create(DataType.DOUBLE, new long[] {n, n}, 'f');
    Nd4j.getBlasWrapper().lapack().gesvd(work, sigma, u, vt);
    return new Svd(u, sigma, vt);
  }

  private static INDArray toDouble(INDArray x) {
    return x.castTo(DataType.DOUBLE).dup('c');
  }

  private static void checkWeights(List<LoraWeights> replicas, double[] weights) {
    ModelConfig.require(!replicas.isEmpty(), "need at least one replica to aggregate");
    ModelConfig.require(
        weights.length == replicas.size(),
        "need one weight per replica: %d weights for %d replicas",
        weights.length,
        replicas.size());
    double sum = 0;
    for (int i = 0; i < weights.length; i++) {
      ModelConfig.require(
          weights[i] >= 0 && Double.isFinite(weights[i]),
          "weight of replica %d must be finite and >= 0 but was %s",
          i,
          weights[i]);
      sum += weights[i];
    }
    ModelConfig.require(
        Math.abs(sum - 1) <= WEIGHT_SUM_TOLERANCE,
        "replica weights must sum to 1 but sum to %s; normalise them (e.g. by training tokens)",
        sum);
  }

  private static void checkCompatible(List<LoraWeights> replicas) {
    LoraWeights first = replicas.get(0);
    for (int i = 0; i < replicas.size(); i++) {
      LoraMethod method = replicas.get(i).config().method();
      ModelConfig.require(
          !method.variant().ownsBranch(),
          "replica %d is a %s adapter, whose update is not a sum of s·B·A terms; only lora and"
              + " lora-fa replicas can be aggregated",
          i,
          method.key());
    }
    for (int i = 1; i < replicas.size(); i++) {
      LoraWeights r = replicas.get(i);
      ModelConfig.require(
          r.model().equals(first.model()),
          "replica %d was trained on model %s but replica 0 on %s; aggregate only replicas of one"
              + " base model",
          i,
          r.model(),
          first.model());
      ModelConfig.require(
          r.config().targets().equals(first.config().targets()),
          "replica %d targets %s but replica 0 targets %s; aggregate only replicas of one"
              + " configuration",
          i,
          r.config().targets(),
          first.config().targets());
      ModelConfig.require(
          r.modules().stream()
              .map(LoraWeights.Module::name)
              .toList()
              .equals(first.modules().stream().map(LoraWeights.Module::name).toList()),
          "replica %d adapts other layers than replica 0; aggregate only replicas of one"
              + " configuration",
          i);
    }
  }
}
