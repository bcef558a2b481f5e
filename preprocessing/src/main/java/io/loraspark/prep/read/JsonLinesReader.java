package io.loraspark.prep.read;

import io.loraspark.prep.schema.RejectReason;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapreduce.InputSplit;
import org.apache.hadoop.mapreduce.Job;
import org.apache.hadoop.mapreduce.lib.input.FileInputFormat;
import org.apache.hadoop.mapreduce.lib.input.FileSplit;
import org.apache.hadoop.mapreduce.lib.input.TextInputFormat;
import org.apache.spark.api.java.JavaNewHadoopRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.Function2;
import scala.Tuple2;

/**
 * Reads JSON-lines files as raw byte lines (Hadoop's {@link TextInputFormat}, so big files split
 * and compressed ones decompress) and numbers every line within its file.
 *
 * <p>Line numbers need the number of lines in the earlier splits of the same file, so the files are
 * read twice: a first pass counts the lines of every split (as {@code zipWithIndex} does), a second
 * numbers them. Each line is decoded as strict UTF-8; a line that is not valid UTF-8 becomes a
 * record with {@link RejectReason#INVALID_UTF8} (its text decoded lossily), never a job failure.
 * Blank lines are skipped and only counted. A UTF-8 byte-order mark at the start of a file and the
 * '\r' of CRLF line ends are removed.
 */
final class JsonLinesReader {

  private JsonLinesReader() {}

  /** Lines of one input split: its file, start offset, all lines and blank lines. */
  record SplitLines(String path, long start, long lines, long blank) implements Serializable {}

  /** The numbered records plus the number of blank lines skipped. */
  record Result(JavaRDD<RawRecord> records, long blankLines) {}

  static Result read(JavaSparkContext jsc, List<InputFile> files, int minPartitions) {
    JavaNewHadoopRDD<LongWritable, Text> lines = open(jsc, files, minPartitions);
    List<SplitLines> splits = lines.mapPartitionsWithInputSplit(new CountLines(), false).collect();
    Map<String, Long> linesBefore = new HashMap<>();
    long blank = 0;
    for (SplitLines s : splits) {
      long before =
          splits.stream()
              .filter(o -> o.path().equals(s.path()) && o.start() < s.start())
              .mapToLong(SplitLines::lines)
              .sum();
      linesBefore.put(key(s.path(), s.start()), before);
      blank += s.blank();
    }
    Map<String, InputFile> byPath = new HashMap<>();
    files.forEach(f -> byPath.put(f.uri(), f));
    JavaRDD<RawRecord> records =
        lines.mapPartitionsWithInputSplit(new NumberLines(byPath, linesBefore), false);
    return new Result(records, blank);
  }

  @SuppressWarnings("unchecked")
  private static JavaNewHadoopRDD<LongWritable, Text> open(
      JavaSparkContext jsc, List<InputFile> files, int minPartitions) {
    try {
      Job job = Job.getInstance(new Configuration(jsc.hadoopConfiguration()));
      FileInputFormat.setInputPaths(
          job, files.stream().map(f -> new Path(f.uri())).toArray(Path[]::new));
      if (minPartitions > 0) {
        long total = files.stream().mapToLong(InputFile::length).sum();
        FileInputFormat.setMaxInputSplitSize(
            job, Math.max(1, (total + minPartitions - 1) / minPartitions));
      }
      return (JavaNewHadoopRDD<LongWritable, Text>)
          jsc.newAPIHadoopRDD(
              job.getConfiguration(), TextInputFormat.class, LongWritable.class, Text.class);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot set up reading " + files.size() + " JSONL files", e);
    }
  }

  static String key(String path, long start) {
    return path + "@" + start;
  }

  static boolean blank(Text line) {
    byte[] b = line.getBytes();
    for (int i = 0; i < line.getLength(); i++) {
      if (b[i] != ' ' && b[i] != '\t' && b[i] != '\r') {
        return false;
      }
    }
    return true;
  }

  /** Pass 1: counts the lines of one split. */
  static final class CountLines
      implements Function2<InputSplit, Iterator<Tuple2<LongWritable, Text>>, Iterator<SplitLines>> {
    @Override
    public Iterator<SplitLines> call(InputSplit split, Iterator<Tuple2<LongWritable, Text>> it) {
      FileSplit fs = (FileSplit) split;
      long lines = 0;
      long blank = 0;
      while (it.hasNext()) {
        lines++;
        if (blank(it.next()._2())) {
          blank++;
        }
      }
      List<SplitLines> out = new ArrayList<>(1);
      out.add(new SplitLines(fs.getPath().toString(), fs.getStart(), lines, blank));
      return out.iterator();
    }
  }

  /** Pass 2: turns the lines of one split into numbered records. */
  static final class NumberLines
      implements Function2<InputSplit, Iterator<Tuple2<LongWritable, Text>>, Iterator<RawRecord>> {
    private final Map<String, InputFile> files;
    private final Map<String, Long> linesBefore;

    NumberLines(Map<String, InputFile> files, Map<String, Long> linesBefore) {
      this.files = new HashMap<>(files);
      this.linesBefore = new HashMap<>(linesBefore);
    }

    @Override
    public Iterator<RawRecord> call(InputSplit split, Iterator<Tuple2<LongWritable, Text>> it) {
      FileSplit fs = (FileSplit) split;
      String path = fs.getPath().toString();
      InputFile file = files.get(path);
      Long before = linesBefore.get(key(path, fs.getStart()));
      if (file == null || before == null) {
        throw new IllegalStateException("split " + key(path, fs.getStart()) + " was not counted");
      }
      return new LineIterator(file, before, fs.getStart() == 0, it);
    }
  }

  /** Numbers and decodes lines lazily, skipping blank ones. */
  private static final class LineIterator implements Iterator<RawRecord> {
    private final InputFile file;
    private final Iterator<Tuple2<LongWritable, Text>> lines;
    private final Utf8 utf8 = new Utf8();
    private long lineNumber;
    private boolean atFileStart;
    private RawRecord next;

    LineIterator(
        InputFile file,
        long before,
        boolean atFileStart,
        Iterator<Tuple2<LongWritable, Text>> lines) {
      this.file = file;
      this.lineNumber = before;
      this.atFileStart = atFileStart;
      this.lines = lines;
    }

    @Override
    public boolean hasNext() {
      while (next == null && lines.hasNext()) {
        Text line = lines.next()._2();
        lineNumber++;
        boolean first = atFileStart;
        atFileStart = false;
        if (!blank(line)) {
          next = record(line, first);
        }
      }
      return next != null;
    }

    @Override
    public RawRecord next() {
      if (!hasNext()) {
        throw new NoSuchElementException();
      }
      RawRecord r = next;
      next = null;
      return r;
    }

    private RawRecord record(Text line, boolean first) {
      byte[] b = line.getBytes();
      int start = 0;
      int end = line.getLength();
      if (first
          && end >= 3
          && (b[0] & 0xff) == 0xEF
          && (b[1] & 0xff) == 0xBB
          && (b[2] & 0xff) == 0xBF) {
        start = 3;
      }
      if (end > start && b[end - 1] == '\r') {
        end--;
      }
      Utf8.Decoded d = utf8.decode(b, start, end - start);
      if (d.valid()) {
        return RawRecord.ok(file.index(), file.name(), lineNumber, d.text());
      }
      return new RawRecord(
          file.index(),
          file.name(),
          lineNumber,
          d.text(),
          RejectReason.INVALID_UTF8,
          "invalid UTF-8 byte sequence at byte " + (d.badOffset() + 1) + " of the line");
    }
  }
}
