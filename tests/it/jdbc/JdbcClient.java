// The PostgreSQL JDBC driver (what DBeaver, DataGrip and BI tools use)
// against a sluice server: run as `java -cp postgresql.jar JdbcClient.java
// <port>` by tests/it/pg.rs. Any failed check throws, so the exit status
// tells.
import java.sql.*;
import java.util.*;

public class JdbcClient {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/qdb";
        try (Connection c = DriverManager.getConnection(url, "admin", "quest")) {
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE j (ts TIMESTAMP, name VARCHAR, v DOUBLE) TIMESTAMP(ts) PARTITION BY DAY");
                s.execute("INSERT INTO j VALUES ('2024-01-01T00:00:00Z', 'a', 1.5), ('2024-01-02T00:00:00Z', 'b', 2.5), ('2024-01-03T00:00:00Z', 'c', 3.5)");
            }
            // Past prepareThreshold (5) the driver switches to named
            // server-side statements.
            try (PreparedStatement p = c.prepareStatement("SELECT name, v FROM j WHERE v > ? ORDER BY ts")) {
                for (int i = 0; i < 8; i++) {
                    p.setDouble(1, 2.0);
                    List<String> got = new ArrayList<>();
                    try (ResultSet r = p.executeQuery()) {
                        while (r.next()) got.add(r.getString(1) + "=" + r.getDouble(2));
                    }
                    check(got.equals(List.of("b=2.5", "c=3.5")), "prepared run " + i + ": " + got);
                }
            }
            // A fetch size with autocommit off reads in portions.
            c.setAutoCommit(false);
            try (PreparedStatement p = c.prepareStatement("SELECT name FROM j ORDER BY ts")) {
                p.setFetchSize(1);
                List<String> got = new ArrayList<>();
                try (ResultSet r = p.executeQuery()) {
                    while (r.next()) got.add(r.getString(1));
                }
                check(got.equals(List.of("a", "b", "c")), "fetch size: " + got);
            }
            c.commit();
            c.setAutoCommit(true);
            DatabaseMetaData md = c.getMetaData();
            check(md.getDatabaseProductVersion().startsWith("16.6"), md.getDatabaseProductVersion());
            List<String> tables = new ArrayList<>();
            try (ResultSet r = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (r.next()) tables.add(r.getString("TABLE_SCHEM") + "." + r.getString("TABLE_NAME"));
            }
            check(tables.equals(List.of("public.j")), "getTables: " + tables);
            List<String> schemas = new ArrayList<>();
            try (ResultSet r = md.getSchemas()) {
                while (r.next()) schemas.add(r.getString("TABLE_SCHEM"));
            }
            check(schemas.equals(List.of("pg_catalog", "public", "sys")), "getSchemas: " + schemas);
            List<String> columns = new ArrayList<>();
            try (ResultSet r = md.getColumns(null, "public", "j", "%")) {
                while (r.next()) columns.add(r.getString("COLUMN_NAME") + ":" + r.getString("TYPE_NAME") + ":" + r.getInt("ORDINAL_POSITION"));
            }
            check(columns.equals(List.of("ts:timestamp:1", "name:text:2", "v:float8:3")), "getColumns: " + columns);
            // Statement.cancel() from another thread stops a long query.
            try (Statement s = c.createStatement()) {
                Thread t = new Thread(() -> {
                    try {
                        Thread.sleep(500);
                        s.cancel();
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
                t.start();
                long t0 = System.nanoTime();
                try {
                    s.executeQuery("SELECT count(*) FROM (SELECT a.value FROM generate_series(1, 3000000) a, generate_series(1, 1000) b) x");
                    throw new AssertionError("not cancelled");
                } catch (SQLException e) {
                    check("57014".equals(e.getSQLState()), "cancel state " + e.getSQLState() + ": " + e.getMessage());
                }
                check(System.nanoTime() - t0 < 10_000_000_000L, "cancel took too long");
                t.join();
            }
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT count(*) FROM j")) {
                check(r.next() && r.getLong(1) == 3, "usable after cancel");
            }
            System.out.println("jdbc ok");
        }
    }
}
