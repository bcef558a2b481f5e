package io.loraspark.train.spark;

import io.loraspark.train.data.ShardReader;
import io.loraspark.train.data.TokenLimits;
import io.loraspark.train.data.TokenRowsJsonl;
import io.loraspark.train.model.TokenRow;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Training and eval rows for the tasks of one executor JVM, read once per data URI and shared
 * read-only: the preprocessing output (its root, {@code shards/} or Parquet files; the split column
 * decides train/eval) or JSONL of {@code input_ids}/{@code labels} (a stable 10% by hash is held
 * out for eval).
 */
public final class TrainingData {
  /** Rows by split. */
  public record Split(List<TokenRow> train, List<TokenRow> eval) {}

  private static final ConcurrentHashMap<String, Split> CACHE = new ConcurrentHashMap<>();

  private TrainingData() {}

  /**
   * The rows at {@code uri}, cached for this JVM, each checked against the model's {@code limits}
   * (token ids in the vocabulary, rows no longer than its positions).
   */
  public static Split get(String uri, TokenLimits limits) {
    return CACHE.computeIfAbsent(uri + '\u0000' + limits, unused -> load(uri, limits));
  }

  /**
   * Reads the rows at {@code uri} (not cached).
   *
   * @throws IllegalArgumentException naming the URI when it holds no usable rows, or the file and
   *     row of a token outside {@code limits}
   */
  public static Split load(String uri, TokenLimits limits) {
    if (uri.endsWith(".jsonl")) {
      List<TokenRow> train = new ArrayList<>();
      List<TokenRow> eval = new ArrayList<>();
      for (TokenRow r : TokenRowsJsonl.read(Path.of(uri.replaceFirst("^file:", "")), limits)) {
        (TokenRowsJsonl.isEvalRow(r) ? eval : train).add(r);
      }
      return checked(uri, new Split(List.copyOf(train), List.copyOf(eval)));
    }
    org.apache.hadoop.conf.Configuration conf = new org.apache.hadoop.conf.Configuration();
    ShardReader.Shards s = ShardReader.read(ShardReader.shardFiles(uri, conf), conf, limits);
    return checked(uri, new Split(s.train(), s.eval()));
  }

  private static Split checked(String uri, Split s) {
    if (s.train().isEmpty()) {
      throw new IllegalArgumentException(uri + ": no training rows");
    }
    return s;
  }
}
