/* The common case of StreamDecoder._feed_frames (stream.py) in C: whole log lines,
 * one per multiplexed frame, each behind Docker's RFC3339Nano timestamp.
 *
 * split(buf, pos, max_bytes) -> (lines, pos) decodes frames from `pos` for as long as each
 * is simple: complete in `buf`, from stdin/stdout/stderr, ending in a newline (not a 16 KiB
 * piece), its timestamp exactly `YYYY-MM-DDTHH:MM:SS[.1-9 digits]Z `, its line at most
 * max_bytes. It stops at the first frame that is not, and returns where: the Python code
 * takes that frame (pieces, bad stamps, torn frames), then calls split() again. Lines are
 * (stream, time_ns, data, False, False), the tuples the Python code makes for whole lines.
 * tests/test_speedups.py checks both agree. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *stream_names[3];

static inline int digits(const unsigned char *p, int n, long long *out) {
    long long v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* Floor division, as Python's // (parsers.timestamps.days_from_civil). */
static inline long long floordiv(long long a, long long b) {
    long long q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static long long days_from_civil(long long y, long long m, long long d) {
    y -= m <= 2;
    long long era = floordiv(y, 400);
    long long yoe = y - era * 400;
    long long doy = floordiv(153 * (m + (m > 2 ? -3 : 9)) + 2, 5) + d - 1;
    long long doe = yoe * 365 + floordiv(yoe, 4) - floordiv(yoe, 100) + doy;
    return era * 146097 + doe - 719468;
}

/* The stamp at p (at most `avail` bytes): its epoch ns and the offset of the line after
 * the space behind it, or 0 if it is not exactly Docker's format. */
static Py_ssize_t docker_time(const unsigned char *p, Py_ssize_t avail, long long *ns) {
    long long y, mo, d, h, mi, s, frac = 0;
    if (avail < 21 || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':')
        return 0;
    if (!digits(p, 4, &y) || !digits(p + 5, 2, &mo) || !digits(p + 8, 2, &d) || !digits(p + 11, 2, &h)
        || !digits(p + 14, 2, &mi) || !digits(p + 17, 2, &s))
        return 0;
    Py_ssize_t i = 19;
    if (p[i] == '.') {
        int n = 0;
        i++;
        while (i < avail && n < 10 && p[i] >= '0' && p[i] <= '9') {
            frac = frac * 10 + (p[i] - '0');
            i++, n++;
        }
        if (n < 1 || n > 9)
            return 0;
        for (; n < 9; n++)
            frac *= 10;
    }
    if (i + 1 >= avail || p[i] != 'Z' || p[i + 1] != ' ')
        return 0;
    long long secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    if (secs < -9000000000LL || secs > 9000000000LL)
        return 0; /* beyond 64-bit nanoseconds (years before 1685 or after 2255): Python's ints */
    *ns = secs * 1000000000LL + frac;
    return i + 2;
}

static PyObject *split(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "split(buf: bytes, pos: int, max_bytes: int)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    Py_ssize_t max_bytes = PyLong_AsSsize_t(args[2]);
    if ((pos == -1 || max_bytes == -1) && PyErr_Occurred())
        return NULL;
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    if (pos < 0 || pos > n) {
        PyErr_SetString(PyExc_ValueError, "split(): pos out of range");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    while (n - pos >= 8) {
        unsigned kind = buf[pos];
        Py_ssize_t size = ((Py_ssize_t)buf[pos + 4] << 24) | ((Py_ssize_t)buf[pos + 5] << 16)
                          | ((Py_ssize_t)buf[pos + 6] << 8) | (Py_ssize_t)buf[pos + 7];
        Py_ssize_t h = pos + 8, end = h + size;
        if (kind > 2 || size == 0 || end > n || buf[end - 1] != '\n')
            break;
        long long ns;
        Py_ssize_t skip = docker_time(buf + h, size - 1, &ns);
        if (skip == 0 || end - 1 - (h + skip) > max_bytes)
            break;
        PyObject *data = PyBytes_FromStringAndSize((const char *)buf + h + skip, end - 1 - (h + skip));
        PyObject *time_ns = data ? PyLong_FromLongLong(ns) : NULL;
        PyObject *line = time_ns ? PyTuple_New(5) : NULL;
        if (line == NULL) {
            Py_XDECREF(data);
            Py_XDECREF(time_ns);
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(line, 0, Py_NewRef(stream_names[kind]));
        PyTuple_SET_ITEM(line, 1, time_ns);
        PyTuple_SET_ITEM(line, 2, data);
        PyTuple_SET_ITEM(line, 3, Py_NewRef(Py_False));
        PyTuple_SET_ITEM(line, 4, Py_NewRef(Py_False));
        int failed = PyList_Append(out, line);
        Py_DECREF(line);
        if (failed) {
            Py_DECREF(out);
            return NULL;
        }
        pos = end;
    }
    PyObject *at = PyLong_FromSsize_t(pos);
    if (at == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, out, at);
    Py_DECREF(out);
    Py_DECREF(at);
    return result;
}

static PyMethodDef methods[] = {
    {"split", (PyCFunction)(void (*)(void))split, METH_FASTCALL,
     "split(buf, pos, max_bytes) -> (lines, pos): the simple whole-line frames from pos on."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "shipper.sources.docker._frames", NULL, -1, methods};

PyMODINIT_FUNC PyInit__frames(void) {
    /* interned: the very objects of the "stdout"/"stderr" literals (stages compare with `is`) */
    const char *names[3] = {"stdout", "stdout", "stderr"};
    for (int i = 0; i < 3; i++)
        if ((stream_names[i] = PyUnicode_InternFromString(names[i])) == NULL)
            return NULL;
    return PyModule_Create(&module);
}
