#!/usr/bin/env bash
# java workload: javac compiles a small program in WORKDIR and java runs it. Besides
# the Java heap (reserved by the JVM itself), the JVM mallocs for the compilers, class
# metadata, symbol tables and threads; the program adds native churn with direct
# byte buffers and zlib (Deflater/Inflater), and runs tasks on several threads whose
# results are combined in a fixed order.
# Usage: java.sh WORKDIR   (prints a deterministic summary on stdout)
set -euo pipefail
workdir=${1:?usage: java.sh WORKDIR}
cd "$workdir"
export LC_ALL=C HOME=$workdir
unset JAVA_TOOL_OPTIONS JDK_JAVA_OPTIONS _JAVA_OPTIONS CLASSPATH

cat > Churn.java <<'JAVA'
import java.nio.ByteBuffer;
import java.util.*;
import java.util.concurrent.*;
import java.util.zip.*;

public class Churn {
    static long lcg(long x) { return x * 6364136223846793005L + 1442695040888963407L; }

    static String maps(int seed) {
        HashMap<String, List<Integer>> m = new HashMap<>();
        long x = seed;
        for (int i = 0; i < 150_000; i++) {
            x = lcg(x);
            String k = "k" + ((x >>> 33) % 40_000);
            m.computeIfAbsent(k, z -> new ArrayList<>()).add(i);
        }
        TreeMap<String, Integer> sizes = new TreeMap<>();
        long total = 0;
        for (Map.Entry<String, List<Integer>> e : m.entrySet()) {
            sizes.put(e.getKey(), e.getValue().size());
            for (int v : e.getValue()) total += v;
        }
        return "maps " + seed + " " + m.size() + " " + total + " " + sizes.firstKey() + " " + sizes.lastEntry();
    }

    static String strings(int seed) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 200_000; i++) sb.append(Integer.toHexString(i * seed + 7)).append(i % 7 == 0 ? '\n' : ',');
        String s = sb.toString();
        String[] parts = s.split("\n");
        Arrays.sort(parts);
        String joined = String.join("|", parts).replace(",", ";");
        return "strings " + seed + " " + s.length() + " " + parts.length + " " + joined.hashCode();
    }

    static String nativeChurn(int seed) throws Exception {
        CRC32 crc = new CRC32();
        long compressed = 0;
        for (int round = 0; round < 60; round++) {
            ByteBuffer direct = ByteBuffer.allocateDirect(64 * 1024 + round * 1024);
            byte[] data = new byte[direct.capacity()];
            long x = seed + round;
            for (int i = 0; i < data.length; i++) { x = lcg(x); data[i] = (byte) ((x >>> 59) + 'a'); }
            direct.put(data);
            Deflater def = new Deflater(6);
            def.setInput(data);
            def.finish();
            byte[] out = new byte[data.length + 1024];
            int n = def.deflate(out);
            def.end();
            compressed += n;
            Inflater inf = new Inflater();
            inf.setInput(out, 0, n);
            byte[] back = new byte[data.length];
            int m = inf.inflate(back);
            inf.end();
            if (m != data.length || !Arrays.equals(back, data)) throw new IllegalStateException("zlib mismatch");
            crc.update(back);
        }
        return "native " + seed + " " + compressed + " " + Long.toHexString(crc.getValue());
    }

    public static void main(String[] args) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        List<Future<String>> results = new ArrayList<>();
        for (int t = 1; t <= 4; t++) {
            final int seed = t;
            results.add(pool.submit(() -> maps(seed)));
            results.add(pool.submit(() -> strings(seed)));
            results.add(pool.submit(() -> nativeChurn(seed)));
        }
        for (Future<String> f : results) System.out.println(f.get());
        pool.shutdown();
        List<long[]> objs = new ArrayList<>();
        long sum = 0;
        for (int i = 0; i < 400_000; i++) {
            long[] a = new long[1 + i % 16];
            a[0] = i;
            objs.add(a);
            if (objs.size() > 50_000) { sum += objs.get(i % 50_000)[0]; objs.clear(); }
        }
        System.out.println("objects " + sum);
    }
}
JAVA
javac -J-XX:-UsePerfData -J-Xshare:auto -d . Churn.java
java -XX:-UsePerfData -Xshare:auto -cp . Churn
