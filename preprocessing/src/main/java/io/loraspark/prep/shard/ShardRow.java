package io.loraspark.prep.shard;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * One row of {@link ShardSchema}.
 *
 * @param exampleId example id (or hash of the packed member ids)
 * @param split train or eval
 * @param inputIds token ids
 * @param labels labels
 * @param segmentIds segment of each position (1..numExamples)
 * @param numLabelTokens labels that are scored
 * @param numExamples examples in the row
 * @param source file:row of the first example
 */
public record ShardRow(
    String exampleId,
    String split,
    int[] inputIds,
    int[] labels,
    int[] segmentIds,
    int numLabelTokens,
    int numExamples,
    String source) {

  /** The Spark row, columns in {@link ShardSchema#SCHEMA} order. */
  public Row toRow() {
    return RowFactory.create(
        exampleId,
        split,
        inputIds,
        labels,
        segmentIds,
        inputIds.length,
        numLabelTokens,
        numExamples,
        source);
  }
}
