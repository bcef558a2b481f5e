package io.loraspark.prep.job;

import java.util.Map;
import java.util.TreeMap;

/**
 * Row counts of a run, from the kinds ({@code ok} or a reason code) counted after mapping and after
 * tokenizing.
 *
 * @param inputRows rows read (blank JSONL lines excluded)
 * @param blankLines blank JSONL lines skipped
 * @param unique mapped rows left after removing exact duplicates
 * @param accepted examples that reached the shards
 * @param duplicates mapped rows dropped as exact duplicates
 * @param rejectedByReason rejected rows per reason code
 */
record Counts(
    long inputRows,
    long blankLines,
    long unique,
    long accepted,
    long duplicates,
    Map<String, Long> rejectedByReason) {

  static final String OK = "ok";

  static Counts of(Map<String, Long> mapped, Map<String, Long> tokenized, long blankLines) {
    long input = mapped.values().stream().mapToLong(Long::longValue).sum();
    long mappedOk = mapped.getOrDefault(OK, 0L);
    long unique = tokenized.values().stream().mapToLong(Long::longValue).sum();
    long accepted = tokenized.getOrDefault(OK, 0L);
    Map<String, Long> reasons = new TreeMap<>();
    mapped.forEach((k, v) -> reasons.merge(k, v, Long::sum));
    tokenized.forEach((k, v) -> reasons.merge(k, v, Long::sum));
    reasons.remove(OK);
    return new Counts(input, blankLines, unique, accepted, mappedOk - unique, reasons);
  }

  /** Rows rejected at any step. */
  long rejected() {
    return rejectedByReason.values().stream().mapToLong(Long::longValue).sum();
  }
}
