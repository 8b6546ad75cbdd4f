package dev.hanlin.data.shard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.hanlin.data.Fixtures;
import dev.hanlin.data.prepare.Prepare;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VerifyDataTest {
  @TempDir Path dir;

  @Test
  void findsFlippedBytesWrongTokenizersAndStrayShards() throws Exception {
    var tok = new Fixtures.ByteTokenizer();
    Fixtures.write(dir.resolve("a.jsonl"), Fixtures.jsonl(Fixtures.mixed(), "text"));
    Path out = dir.resolve("o");
    Prepare.run(
        Fixtures.config(out, List.of("a.jsonl"), Map.of("validation_split_percentage", 10.0)),
        tok,
        dir,
        new PrintStream(new ByteArrayOutputStream()));
    VerifyData.Report ok = VerifyData.run(out, tok.fingerprint());
    assertTrue(ok.ok(), ok.summary());
    assertEquals(2, ok.shards());
    assertTrue(ok.summary().contains("OK"));

    assertFalse(VerifyData.run(out, "other").ok());

    Path shard = out.resolve(Manifest.read(out).shards("train").getFirst().file());
    try (RandomAccessFile f = new RandomAccessFile(shard.toFile(), "rw")) {
      f.seek(ShardFormat.HEADER_BYTES + 100);
      int b = f.read();
      f.seek(ShardFormat.HEADER_BYTES + 100);
      f.write(b ^ 1);
    }
    Files.copy(shard, out.resolve("shards/stray.tok"));
    VerifyData.Report bad = VerifyData.run(out, tok.fingerprint());
    assertEquals(2, bad.problems().size(), bad.summary());
    assertTrue(bad.summary().contains("data checksum mismatch"), bad.summary());
    assertTrue(bad.summary().contains("stray.tok: shard file not listed"), bad.summary());
  }
}
