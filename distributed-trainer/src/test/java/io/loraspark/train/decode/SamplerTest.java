package io.loraspark.train.decode;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The sampler against the distributions it should draw from, computed here in double: 20,000 draws
 * per case, each empirical frequency within 0.015 of its probability (about 4.5 standard errors at
 * p = 0.5), and never a token outside the kept set.
 */
class SamplerTest {
  static final float[] LOGITS = {1.0f, 3.0f, 2.5f, -1.0f, 2.9f, 0.5f, 3.0f};
  static final int DRAWS = 20_000;
  static final double TOLERANCE = 0.015;

  private static SamplingParams params(double temperature, int topK, double topP, long seed) {
    return new SamplingParams(16, temperature, topK, topP, seed, Set.of(), false);
  }

  /** softmax(logits / t) restricted to {@code keep}, renormalised. */
  private static double[] expected(double t, boolean[] keep) {
    double[] p = new double[LOGITS.length];
    double z = 0;
    for (int i = 0; i < p.length; i++) {
      p[i] = keep[i] ? Math.exp(LOGITS[i] / t) : 0;
      z += p[i];
    }
    for (int i = 0; i < p.length; i++) {
      p[i] /= z;
    }
    return p;
  }

  private static void assertDraws(SamplingParams params, double[] want) {
    Sampler s = new Sampler(params);
    int[] counts = new int[LOGITS.length];
    for (int i = 0; i < DRAWS; i++) {
      counts[s.next(LOGITS, 0, LOGITS.length)]++;
    }
    for (int i = 0; i < want.length; i++) {
      double got = counts[i] / (double) DRAWS;
      if (want[i] == 0) {
        assertThat(counts[i]).as("token %d is outside the kept set", i).isZero();
      } else {
        assertThat(got).as("frequency of token %d", i).isCloseTo(want[i], within(TOLERANCE));
      }
    }
  }

  private static org.assertj.core.data.Offset<Double> within(double d) {
    return org.assertj.core.data.Offset.offset(d);
  }

  @Test
  void temperatureSamplesSoftmaxOfScaledLogits() {
    boolean[] all = {true, true, true, true, true, true, true};
    assertDraws(params(1.0, 0, 1.0, 1), expected(1.0, all));
    assertDraws(params(0.5, 0, 1.0, 2), expected(0.5, all));
  }

  @Test
  void topKKeepsTheKMostLikely() {
    // ids 1 and 6 tie at 3.0, then 4 at 2.9: top-3 is {1, 6, 4}
    boolean[] keep = {false, true, false, false, true, false, true};
    assertDraws(params(1.0, 3, 1.0, 3), expected(1.0, keep));
  }

  @Test
  void topPKeepsTheSmallestNucleus() {
    boolean[] all = {true, true, true, true, true, true, true};
    double[] p = expected(1.0, all);
    // descending: 1 and 6 (0.267 each), 4 (0.242), 2 (0.162): 1 and 6 hold 0.534 < 0.7, with 4
    // 0.775 >= 0.7, so the nucleus is {1, 6, 4}
    assertThat(p[1] + p[6]).isLessThan(0.7);
    assertThat(p[1] + p[6] + p[4]).isGreaterThan(0.7);
    boolean[] keep = {false, true, false, false, true, false, true};
    assertDraws(params(1.0, 0, 0.7, 4), expected(1.0, keep));
  }

  @Test
  void topKThenTopPWithinIt() {
    // top-4 = {1, 6, 4, 2}; renormalised, 1 and 6 hold 0.57 < 0.6, so 4 joins; 2 does not
    boolean[] keep = {false, true, false, false, true, false, true};
    assertDraws(params(1.0, 4, 0.6, 5), expected(1.0, keep));
  }

  @Test
  void greedyIsArgmaxWithTiesToTheLowestId() {
    Sampler s = new Sampler(params(0, 0, 1.0, 0));
    assertThat(s.next(LOGITS, 0, LOGITS.length)).isEqualTo(1);
    assertThat(new Sampler(params(0.7, 1, 1.0, 0)).next(LOGITS, 0, LOGITS.length))
        .as("top_k = 1 is greedy")
        .isEqualTo(1);
  }

  @Test
  void theSameSeedDrawsTheSameTokens() {
    Sampler a = new Sampler(params(1.0, 0, 0.95, 42));
    Sampler b = new Sampler(params(1.0, 0, 0.95, 42));
    Sampler c = new Sampler(params(1.0, 0, 0.95, 43));
    int[] da = new int[200];
    int[] db = new int[200];
    int[] dc = new int[200];
    for (int i = 0; i < 200; i++) {
      da[i] = a.next(LOGITS, 0, LOGITS.length);
      db[i] = b.next(LOGITS, 0, LOGITS.length);
      dc[i] = c.next(LOGITS, 0, LOGITS.length);
    }
    assertThat(db).isEqualTo(da);
    assertThat(dc).isNotEqualTo(da);
  }

  @Test
  void logprobIsTheLogSoftmax() {
    double z = 0;
    for (float l : LOGITS) {
      z += Math.exp(l);
    }
    for (int i = 0; i < LOGITS.length; i++) {
      assertThat(Sampler.logprob(LOGITS, 0, LOGITS.length, i))
          .isCloseTo(LOGITS[i] - Math.log(z), within(1e-6));
    }
  }

  @Test
  void badValuesAreRefusedNamingTheField() {
    assertThatThrownBy(() -> params(Double.NaN, 0, 1, 0)).hasMessageContaining("temperature");
    assertThatThrownBy(() -> params(-0.1, 0, 1, 0)).hasMessageContaining("temperature");
    assertThatThrownBy(() -> params(1, -1, 1, 0)).hasMessageContaining("top_k");
    assertThatThrownBy(() -> params(1, 0, 0, 0)).hasMessageContaining("top_p");
    assertThatThrownBy(() -> params(1, 0, 1.5, 0)).hasMessageContaining("top_p");
    assertThatThrownBy(() -> new SamplingParams(-1, 0, 0, 1, 0, Set.of(), false))
        .hasMessageContaining("max_new_tokens");
  }
}
