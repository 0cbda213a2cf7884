/* version.h — Tarn's version, shown by `tarn --version` and tarn_version(). */
#ifndef TARN_VERSION_H
#define TARN_VERSION_H

#define TARN_VERSION "0.1.0"

#endif
