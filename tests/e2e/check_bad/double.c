/* Breaks the double rule: sqrt of a float (line 7) and a sum in a double
 * (line 15). */
#include <math.h>

float root(float x)
{
    return sqrt(x);
}

float mean(const float *x, int n)
{
    double acc = 0;
    float count = (float)n;
    for (int i = 0; i < n; i++)
        acc += x[i];
    return (float)acc / count;
}
