// Symbol visibility: the library is built with -fvisibility=hidden; the public API is marked.
#pragma once

#if defined(CHRONICLE_STATIC)
#define CHRONICLE_API
#elif defined(__GNUC__)
#define CHRONICLE_API [[gnu::visibility("default")]]
#else
#define CHRONICLE_API
#endif
