package io.loraspark.prep.shard;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The {@code manifest.json} of a preprocess output: counts (with {@code input_rows = accepted +
 * rejected + duplicates}), rejected rows by reason, token-length percentiles, split and shard
 * counts, and what produced the shards (tokenizer hash, template, seed, eval fraction, max_seq_len,
 * packing).
 *
 * @param json the manifest document
 */
public record Manifest(ObjectNode json) {

  /** Input rows (blank JSONL lines excluded). */
  public long inputRows() {
    return json.path("input_rows").asLong();
  }

  /** Examples written to the shards. */
  public long accepted() {
    return json.path("accepted").asLong();
  }

  /** Rows in {@code rejected/}. */
  public long rejected() {
    return json.path("rejected").asLong();
  }

  /** Exact duplicates removed (the first by input order is kept). */
  public long duplicates() {
    return json.path("duplicates").asLong();
  }

  /** Rejected rows per reason code. */
  public Map<String, Long> rejectedByReason() {
    Map<String, Long> out = new TreeMap<>();
    json.path("rejected_by_reason")
        .properties()
        .forEach(e -> out.put(e.getKey(), e.getValue().asLong()));
    return out;
  }

  /** Examples in a split ({@link ShardSchema#TRAIN} or {@link ShardSchema#EVAL}). */
  public long examples(String split) {
    return json.path("splits").path(split).path("examples").asLong();
  }

  /** The one-line summary the CLI prints: the counts plus the output path. */
  public ObjectNode summary() {
    ObjectNode s = json.objectNode();
    for (String key :
        new String[] {"input_rows", "accepted", "rejected", "duplicates", "rejected_by_reason"}) {
      s.set(key, json.get(key));
    }
    s.put("train", examples(ShardSchema.TRAIN));
    s.put("eval", examples(ShardSchema.EVAL));
    s.set("shard_count", json.get("shard_count"));
    s.set("output", json.get("output"));
    return s;
  }

  /**
   * Reads {@code output/manifest.json}.
   *
   * @throws IllegalArgumentException if it is missing (the output is incomplete) or not JSON
   */
  public static Manifest read(Configuration conf, String output) {
    Path file = new Path(output, OutputCommitter.MANIFEST);
    try {
      FileSystem fs = file.getFileSystem(conf);
      if (!fs.exists(file)) {
        throw new IllegalArgumentException(
            file + " is missing: " + output + " is not a complete preprocess output");
      }
      try (InputStream in = fs.open(file)) {
        JsonNode node = new ObjectMapper().readTree(in);
        if (!(node instanceof ObjectNode o)) {
          throw new IllegalArgumentException(file + " must hold a JSON object");
        }
        return new Manifest(o);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
  }
}
