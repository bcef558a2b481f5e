package io.loraspark.pipeline.cli;

import io.loraspark.train.data.TokenLimits;
import io.loraspark.train.data.TokenRowsJsonl;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.spark.TrainingData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The rows {@code train} trains and evaluates on. */
final class TrainRows {
  private TrainRows() {}

  /**
   * {@code train}'s training and eval rows from DATA and --eval-data: a preprocess output's split
   * column decides; JSONL holds out a stable 10% unless --eval-data is given, whose rows then
   * replace the held-out ones.
   */
  static TrainingData.Split read(Path data, Path evalData, TokenLimits limits) {
    List<TokenRow> trainRows = new ArrayList<>();
    List<TokenRow> evalRows = new ArrayList<>();
    if (Files.isDirectory(data) || data.toString().endsWith(".parquet")) {
      TrainingData.Split split = TrainingData.load(data.toString(), limits);
      trainRows.addAll(split.train());
      evalRows.addAll(split.eval());
    } else {
      List<TokenRow> rows = TokenRowsJsonl.read(data, limits);
      if (evalData != null) {
        trainRows.addAll(rows);
      } else {
        for (TokenRow r : rows) {
          (TokenRowsJsonl.isEvalRow(r) ? evalRows : trainRows).add(r);
        }
      }
    }
    if (evalData != null) {
      evalRows.clear();
      evalRows.addAll(
          Files.isDirectory(evalData)
              ? TrainingData.load(evalData.toString(), limits).eval()
              : TokenRowsJsonl.read(evalData, limits));
    }
    if (trainRows.isEmpty()) {
      throw new IllegalArgumentException(data + ": no training rows after the eval split");
    }
    return new TrainingData.Split(trainRows, evalRows);
  }
}
