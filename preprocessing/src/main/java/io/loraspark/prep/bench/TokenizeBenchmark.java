package io.loraspark.prep.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.prep.job.PreprocessConfig;
import io.loraspark.prep.job.PreprocessJob;
import io.loraspark.prep.read.StrictJson;
import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.RecordFormat;
import io.loraspark.prep.schema.RecordMapper;
import io.loraspark.prep.schema.RowRejection;
import io.loraspark.prep.shard.Manifest;
import io.loraspark.prep.template.TemplateKind;
import io.loraspark.prep.tokenize.ExampleEncoder;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.prep.tokenize.TokenizerSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.storage.StorageLevel;

/**
 * Tokenization throughput, tokens/s per core: the Spark tokenize step (the job's executor code, one
 * cached tokenizer per JVM, on {@code local[N]}) against a plain single-thread loop over the same
 * tokenizer, template and examples; plus the whole preprocess job end to end. Prints one JSON line.
 *
 * <p>Usage: {@code TokenizeBenchmark [--model DIR] [--data FILE] [--cores N] [--repeat R]}
 * (defaults: models/stories260K, fixtures/data/code-alpaca-2k.json, all cores, 5 copies of the
 * data).
 */
public final class TokenizeBenchmark {

  private TokenizeBenchmark() {}

  /** Runs the benchmark; see the class comment for the arguments. */
  public static void main(String[] args) throws Exception {
    Map<String, String> opts = options(args);
    Path model = Path.of(opts.getOrDefault("--model", "models/stories260K"));
    Path data = Path.of(opts.getOrDefault("--data", "fixtures/data/code-alpaca-2k.json"));
    int cores =
        Integer.parseInt(
            opts.getOrDefault("--cores", "" + Runtime.getRuntime().availableProcessors()));
    int repeat = Integer.parseInt(opts.getOrDefault("--repeat", "5"));
    List<Conversation> examples = examples(data, repeat);
    ObjectNode out = JsonNodeFactory.instance.objectNode();
    out.put("benchmark", "tokenize");
    out.put("model", model.toString());
    out.put("data", data.toString());
    out.put("examples", examples.size());
    out.put("cores", cores);
    try (TextTokenizer tokenizer = TextTokenizer.load(model)) {
      TemplateKind kind =
          TemplateKind.AUTO.resolve(tokenizer.chatTemplate().isPresent(), model.toString());
      out.put("template", kind.cliName());
      ExampleEncoder encoder =
          new ExampleEncoder(tokenizer, ExampleEncoder.template(kind, tokenizer));
      loop(encoder, examples.subList(0, Math.min(500, examples.size()))); // warm-up
      long t0 = System.nanoTime();
      long tokens = loop(encoder, examples);
      double single = tokens / ((System.nanoTime() - t0) / 1e9);
      out.put("tokens", tokens);
      out.put("single_thread_tokens_per_s", Math.round(single));
      SparkSession spark =
          SparkSession.builder()
              .master("local[" + cores + "]")
              .appName("tokenize-benchmark")
              .config("spark.ui.enabled", "false")
              .getOrCreate();
      try {
        double sparkRate =
            spark(spark, TokenizerSpec.read(model, tokenizer.contentHash()), kind, examples, cores);
        out.put("spark_tokens_per_s", Math.round(sparkRate));
        out.put("spark_tokens_per_s_per_core", Math.round(sparkRate / cores));
        out.put(
            "spark_per_core_vs_single_thread",
            Math.round(sparkRate / cores / single * 1000) / 1000.0);
        job(spark, model, data, out);
      } finally {
        spark.stop();
      }
    }
    System.out.println(out);
  }

  private static long loop(ExampleEncoder encoder, List<Conversation> examples) {
    long tokens = 0;
    for (Conversation c : examples) {
      try {
        tokens += encoder.encode(c).length();
      } catch (RowRejection e) {
        // same as the job: the row would be rejected
      }
    }
    return tokens;
  }

  private static double spark(
      SparkSession spark,
      TokenizerSpec spec,
      TemplateKind kind,
      List<Conversation> examples,
      int cores) {
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    JavaRDD<Conversation> rdd =
        jsc.parallelize(examples, cores * 4).persist(StorageLevel.MEMORY_ONLY());
    rdd.count();
    Broadcast<TokenizerSpec> b = jsc.broadcast(spec);
    rdd.mapPartitions(new CountTokens(b, kind)).reduce(Long::sum); // warm-up: loads the tokenizers
    long t0 = System.nanoTime();
    long tokens = rdd.mapPartitions(new CountTokens(b, kind)).reduce(Long::sum);
    double rate = tokens / ((System.nanoTime() - t0) / 1e9);
    rdd.unpersist();
    return rate;
  }

  private static void job(SparkSession spark, Path model, Path data, ObjectNode out)
      throws IOException {
    Path dir = Files.createTempDirectory("tokenize-benchmark-");
    PreprocessConfig config =
        PreprocessConfig.builder(data.toString(), model.toString(), dir.resolve("out").toString())
            .build();
    long t0 = System.nanoTime();
    Manifest m = new PreprocessJob(config, s -> {}).run(spark);
    double seconds = (System.nanoTime() - t0) / 1e9;
    long tokens =
        m.json().path("splits").path("train").path("tokens").asLong()
            + m.json().path("splits").path("eval").path("tokens").asLong();
    out.put("job_input_rows", m.inputRows());
    out.put("job_seconds", Math.round(seconds * 100) / 100.0);
    out.put("job_tokens_per_s", Math.round(tokens / seconds));
  }

  /** Executor side: encodes a partition with the JVM's cached encoder, returns its token count. */
  static final class CountTokens implements FlatMapFunction<Iterator<Conversation>, Long> {
    private final Broadcast<TokenizerSpec> spec;
    private final TemplateKind kind;

    CountTokens(Broadcast<TokenizerSpec> spec, TemplateKind kind) {
      this.spec = spec;
      this.kind = kind;
    }

    @Override
    public Iterator<Long> call(Iterator<Conversation> it) {
      ExampleEncoder encoder = ExampleEncoder.cached(spec.value(), kind);
      List<Conversation> part = new ArrayList<>();
      it.forEachRemaining(part::add);
      return List.of(loop(encoder, part)).iterator();
    }
  }

  private static List<Conversation> examples(Path data, int repeat) throws IOException {
    List<JsonNode> records = new ArrayList<>();
    String text = Files.readString(data);
    if (text.stripLeading().startsWith("[")) {
      StrictJson.parse(text).forEach(records::add);
    } else {
      text.lines().filter(l -> !l.isBlank()).forEach(l -> records.add(StrictJson.parse(l)));
    }
    RecordMapper mapper = RecordFormat.detect(records, data.toString()).mapper();
    List<Conversation> one = new ArrayList<>();
    for (JsonNode r : records) {
      try {
        one.add(mapper.map(r));
      } catch (RowRejection e) {
        // skipped, as the job would reject it
      }
    }
    List<Conversation> all = new ArrayList<>();
    for (int i = 0; i < repeat; i++) {
      all.addAll(one);
    }
    return all;
  }

  private static Map<String, String> options(String[] args) {
    Map<String, String> opts = new TreeMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      if (!List.of("--model", "--data", "--cores", "--repeat").contains(args[i])) {
        throw new IllegalArgumentException(
            "unknown option " + args[i] + "; valid: --model DIR --data FILE --cores N --repeat R");
      }
      opts.put(args[i], args[i + 1]);
    }
    if (args.length % 2 != 0) {
      throw new IllegalArgumentException("option " + args[args.length - 1] + " needs a value");
    }
    return opts;
  }
}
