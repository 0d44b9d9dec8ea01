/* parsers/timestamps.py to_datetime() in C: epoch ns -> an aware datetime (microseconds, floored).
 *
 * parse() builds @timestamp from logship.timestamp_ns on every line that has a stamp; in Python
 * (an epoch in the zone plus a timedelta: two objects and a call per line) that was about a fifth
 * of the mixed parse. Here the civil date is computed from the day number (H. Hinnant's
 * days-to-civil) and the datetime is made in one call. Only fixed-offset zones (datetime.timezone,
 * whole-second offsets) with a result in years 1..9999 are handled; anything else (DST zones, an
 * offset pushing the wall clock out of range, which raises there) goes to the Python version,
 * given once with set_fallback(). tests/unit/test_speedups.py checks both agree. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>

static PyObject *fallback;
static PyObject *timezone_type;
static PyObject *last_zone;          /* strong ref: the zone whose offset is cached */
static long long last_offset_us;

#define US_PER_DAY 86400000000LL
/* datetime(1, 1, 1) and datetime(9999, 12, 31, 23, 59, 59, 999999) as epoch microseconds */
#define MIN_US (-62135596800000000LL)
#define MAX_US (253402300799999999LL)

static long long floordiv(long long a, long long b) {
    long long q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static PyObject *call_fallback(PyObject *ns, PyObject *zone) {
    if (fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_stamps.set_fallback() was not called");
        return NULL;
    }
    return PyObject_CallFunctionObjArgs(fallback, ns, zone, NULL);
}

/* The zone's fixed offset in microseconds; 0 on success, 1: not a whole-second fixed offset, -1: error. */
static int zone_offset(PyObject *zone, long long *out) {
    if (zone == last_zone) {
        *out = last_offset_us;
        return 0;
    }
    if ((PyObject *)Py_TYPE(zone) != timezone_type)
        return 1;
    PyObject *delta = PyObject_CallMethod(zone, "utcoffset", "O", Py_None);
    if (delta == NULL)
        return -1;
    if (!PyDelta_CheckExact(delta)) {
        Py_DECREF(delta);
        return 1;
    }
    long long us = (long long)PyDateTime_DELTA_GET_DAYS(delta) * US_PER_DAY
                   + (long long)PyDateTime_DELTA_GET_SECONDS(delta) * 1000000LL
                   + PyDateTime_DELTA_GET_MICROSECONDS(delta);
    Py_DECREF(delta);
    Py_INCREF(zone);
    Py_XSETREF(last_zone, zone);
    last_offset_us = us;
    *out = us;
    return 0;
}

static PyObject *to_datetime(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "to_datetime(ns, zone=UTC)");
        return NULL;
    }
    PyObject *ns = args[0], *zone = nargs == 2 ? args[1] : PyDateTime_TimeZone_UTC;
    if (!PyLong_CheckExact(ns))
        return call_fallback(ns, zone);
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(ns, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return call_fallback(ns, zone);
    }
    long long off;
    int r = zone_offset(zone, &off);
    if (r < 0)
        return NULL;
    if (r > 0)
        return call_fallback(ns, zone);
    long long us = floordiv(v, 1000);
    if (us < MIN_US || us > MAX_US)
        return call_fallback(ns, zone);
    us += off;  /* the wall clock in the zone */
    if (us < MIN_US || us > MAX_US)
        return call_fallback(ns, zone);
    long long days = floordiv(us, US_PER_DAY);
    long long rem = us - days * US_PER_DAY;
    /* days since 1970-01-01 -> y/m/d (proleptic Gregorian) */
    long long z = days + 719468;
    long long era = floordiv(z, 146097);
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    int y = (int)(yoe + era * 400 + (m <= 2));
    int hour = (int)(rem / 3600000000LL);
    rem -= hour * 3600000000LL;
    int minute = (int)(rem / 60000000LL);
    rem -= minute * 60000000LL;
    int second = (int)(rem / 1000000LL);
    int micro = (int)(rem - second * 1000000LL);
    return PyDateTimeAPI->DateTime_FromDateAndTime(y, m, d, hour, minute, second, micro, zone,
                                                   PyDateTimeAPI->DateTimeType);
}

static PyObject *set_fallback(PyObject *self, PyObject *fn) {
    Py_INCREF(fn);
    Py_XSETREF(fallback, fn);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"to_datetime", (PyCFunction)(void (*)(void))to_datetime, METH_FASTCALL,
     "to_datetime(ns, zone=UTC) -> datetime: parsers.timestamps.to_datetime for fixed-offset zones."},
    {"set_fallback", set_fallback, METH_O, "The Python to_datetime, for every other input."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_stamps", NULL, -1, methods};

PyMODINIT_FUNC PyInit__stamps(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    timezone_type = (PyObject *)Py_TYPE(PyDateTime_TimeZone_UTC);
    Py_INCREF(timezone_type);
    return PyModule_Create(&module);
}
