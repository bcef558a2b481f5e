package io.loraspark.pipeline.serve;

import io.loraspark.train.decode.AdapterMix;
import io.loraspark.train.decode.AdapterRegistry;
import io.loraspark.train.decode.DecodeEngine;
import io.loraspark.train.decode.KvCache;
import io.loraspark.train.decode.StepRows;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.precision.Precision;
import java.util.List;

/**
 * Routing between finetunes ({@code model: "auto"}): the prompt is scored under every candidate
 * adapter in one fused forward pass (the frozen projections once for the K copies of the prompt,
 * each copy's branches with its own adapter), and the request goes to the adapter under which the
 * prompt is most likely (lowest mean next-token negative log-likelihood, in nats). Its own engine,
 * one routing at a time.
 */
final class Router {
  private final DecodeEngine engine;
  private final ModelConfig c;
  private final StepRows rows = new StepRows();

  Router(ModelWeights base, Precision precision) {
    this.engine = new DecodeEngine(base, precision);
    this.c = base.config();
  }

  /** A routing decision: the chosen adapter and each candidate's mean NLL (nats per token). */
  record Choice(String adapter, double[] meanNll) {}

  /**
   * Scores {@code prompt} (at least 2 tokens) under each candidate.
   *
   * @param names the candidates, as leased
   */
  synchronized Choice route(int[] prompt, List<String> names, AdapterRegistry.MixLease[] leases) {
    int n = prompt.length;
    rows.clear();
    for (int k = 0; k < names.size(); k++) {
      KvCache cache = new KvCache(c, n);
      AdapterMix mix = leases[k].mix();
      for (int t = 0; t < n; t++) {
        rows.add(prompt[t], t, cache, mix, t < n - 1);
      }
    }
    engine.step(rows);
    float[] logits = rows.logits();
    int vocab = c.vocabSize();
    double[] nll = new double[names.size()];
    int best = 0;
    for (int k = 0; k < names.size(); k++) {
      double sum = 0;
      for (int t = 0; t < n - 1; t++) {
        sum -= logProb(logits, (k * (n - 1) + t) * vocab, vocab, prompt[t + 1]);
      }
      nll[k] = sum / (n - 1);
      if (nll[k] < nll[best]) {
        best = k;
      }
    }
    return new Choice(names.get(best), nll);
  }

  private static double logProb(float[] logits, int off, int vocab, int token) {
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < vocab; i++) {
      max = Math.max(max, logits[off + i]);
    }
    double z = 0;
    for (int i = 0; i < vocab; i++) {
      z += Math.exp(logits[off + i] - max);
    }
    return logits[off + token] - max - Math.log(z);
  }
}
