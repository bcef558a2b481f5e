package io.loraspark.prep.job;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.TreeMap;
import org.junit.jupiter.api.Test;

class TokenizedSummaryTest {

  @Test
  void percentilesInterpolateLikeSparkAndNumpy() {
    TreeMap<Integer, Long> values = new TreeMap<>();
    values.put(1, 1L);
    values.put(2, 1L);
    values.put(3, 1L);
    values.put(4, 1L);
    // numpy.percentile([1, 2, 3, 4], [50, 90, 99]) = [2.5, 3.7, 3.97]
    assertThat(TokenizedSummary.percentile(values, 4, 0.5)).isCloseTo(2.5, within(1e-12));
    assertThat(TokenizedSummary.percentile(values, 4, 0.9)).isCloseTo(3.7, within(1e-12));
    assertThat(TokenizedSummary.percentile(values, 4, 0.99)).isCloseTo(3.97, within(1e-12));
    values.put(10, 6L); // [1, 2, 3, 4, 10 x6]: the median is 10
    assertThat(TokenizedSummary.percentile(values, 10, 0.5)).isEqualTo(10.0);
    assertThat(TokenizedSummary.percentile(new TreeMap<>(), 0, 0.5)).isZero();
  }
}
