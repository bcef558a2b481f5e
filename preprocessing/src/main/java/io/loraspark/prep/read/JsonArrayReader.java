package io.loraspark.prep.read;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import io.loraspark.prep.schema.RejectReason;
import java.io.CharConversionException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.compress.CompressionCodec;
import org.apache.hadoop.io.compress.CompressionCodecFactory;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.input.PortableDataStream;
import scala.Tuple2;

/**
 * Reads files holding one JSON array of records (or a single object) with Jackson's streaming
 * parser; element i becomes row i (1-based) and keeps its exact source text.
 *
 * <p>A JSON array cannot be split, so each file is read whole by one task (keep big data in JSONL).
 * A syntax error or invalid UTF-8 inside the array ends what can be read: that element and the rest
 * of the file become one rejected row (its message gives the line and column and says so).
 */
final class JsonArrayReader {

  private JsonArrayReader() {}

  static JavaRDD<RawRecord> read(JavaSparkContext jsc, List<InputFile> files) {
    List<JavaRDD<RawRecord>> parts = new ArrayList<>();
    for (InputFile f : files) {
      parts.add(jsc.binaryFiles(f.uri(), 1).flatMap(new ParseFile(f)));
    }
    return parts.size() == 1 ? parts.get(0) : jsc.union(parts.toArray(JavaRDD[]::new));
  }

  /** Parses one whole file. */
  static final class ParseFile
      implements FlatMapFunction<Tuple2<String, PortableDataStream>, RawRecord> {
    private final InputFile file;

    ParseFile(InputFile file) {
      this.file = file;
    }

    @Override
    public Iterator<RawRecord> call(Tuple2<String, PortableDataStream> t) {
      PortableDataStream stream = t._2();
      CompressionCodec codec =
          new CompressionCodecFactory(stream.getConfiguration()).getCodec(new Path(t._1()));
      try (InputStream raw = stream.open();
          InputStream in = codec == null ? raw : codec.createInputStream(raw)) {
        return parse(file, in.readAllBytes()).iterator();
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read " + t._1(), e);
      }
    }
  }

  /** The records of one file's bytes. */
  static List<RawRecord> parse(InputFile file, byte[] bytes) {
    List<RawRecord> out = new ArrayList<>();
    Utf8 utf8 = new Utf8();
    long lastEnd = 0;
    try (JsonParser p = StrictJson.MAPPER.createParser(bytes)) {
      JsonToken first = p.nextToken();
      if (first == null) {
        return out;
      }
      if (p.currentTokenLocation().getByteOffset() < 0) {
        // Jackson decodes UTF-16/32 (guessed from the first bytes) through a Reader: no byte
        // offsets, and JSON records must be UTF-8 anyway
        out.add(
            rest(
                file,
                bytes,
                0,
                1,
                RejectReason.INVALID_UTF8,
                "the file is not UTF-8 (it looks like UTF-16 or UTF-32); convert it to UTF-8"));
        return out;
      }
      if (first != JsonToken.START_ARRAY) {
        out.add(whole(file, bytes));
        return out;
      }
      lastEnd = p.currentLocation().getByteOffset();
      for (JsonToken t = p.nextToken(); t != JsonToken.END_ARRAY; t = p.nextToken()) {
        if (t == null) {
          throw new IllegalStateException("unreachable: the parser reports a missing ]");
        }
        long start = p.currentTokenLocation().getByteOffset();
        p.skipChildren();
        long end = p.currentLocation().getByteOffset();
        out.add(element(file, bytes, start, end, out.size() + 1L, utf8));
        lastEnd = end;
      }
      lastEnd = p.currentLocation().getByteOffset();
      if (p.nextToken() != null) {
        out.add(
            rest(
                file,
                bytes,
                lastEnd,
                out.size() + 1L,
                RejectReason.MALFORMED_JSON,
                "content after the closing ] of the top-level array"));
      }
    } catch (JsonProcessingException e) {
      String message = StrictJson.describe(e, true);
      RejectReason reason =
          message.contains("UTF-8") ? RejectReason.INVALID_UTF8 : RejectReason.MALFORMED_JSON;
      out.add(
          rest(
              file,
              bytes,
              lastEnd,
              out.size() + 1L,
              reason,
              message + "; this element and the rest of the file could not be read"));
    } catch (CharConversionException e) {
      // Jackson guessed UTF-16/32 from the first bytes and met a sequence invalid in it
      out.add(
          rest(
              file,
              bytes,
              lastEnd,
              out.size() + 1L,
              RejectReason.INVALID_UTF8,
              "not UTF-8 JSON ("
                  + StrictJson.oneLine(e.getMessage())
                  + "); this element and the rest of the file could not be read"));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot parse " + file.uri() + " in memory", e);
    }
    return out;
  }

  private static RawRecord element(
      InputFile file, byte[] bytes, long start, long end, long row, Utf8 utf8) {
    Utf8.Decoded d = utf8.decode(bytes, (int) start, (int) (end - start));
    if (d.valid()) {
      return RawRecord.ok(file.index(), file.name(), row, d.text());
    }
    return new RawRecord(
        file.index(),
        file.name(),
        row,
        d.text(),
        RejectReason.INVALID_UTF8,
        "invalid UTF-8 byte sequence at byte " + (d.badOffset() + 1) + " of the element");
  }

  /** A file whose top-level value is not an array: one record with the whole text. */
  private static RawRecord whole(InputFile file, byte[] bytes) {
    Utf8.Decoded d = new Utf8().decode(bytes, 0, bytes.length);
    String text = d.text().strip();
    if (!text.isEmpty() && text.charAt(0) == '\uFEFF') {
      text = text.substring(1);
    }
    if (!d.valid()) {
      return new RawRecord(
          file.index(),
          file.name(),
          1,
          text,
          RejectReason.INVALID_UTF8,
          "invalid UTF-8 byte sequence at byte " + (d.badOffset() + 1) + " of the file");
    }
    return RawRecord.ok(file.index(), file.name(), 1, text);
  }

  private static RawRecord rest(
      InputFile file, byte[] bytes, long from, long row, RejectReason reason, String message) {
    int start = (int) Math.max(0, Math.min(from, bytes.length));
    String text = new String(bytes, start, bytes.length - start, StandardCharsets.UTF_8);
    text = text.replaceFirst("^[\\s,]+", "").stripTrailing();
    return new RawRecord(file.index(), file.name(), row, text, reason, message);
  }
}
