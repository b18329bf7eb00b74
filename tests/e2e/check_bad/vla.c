/* Breaks the VLA rule: tmp's size is known only at run time (line 5). */
float sum_scaled(const float *x, int n, float k)
{
    float s = 0.0f;
    float tmp[n];
    for (int i = 0; i < n; i++)
        tmp[i] = k * x[i];
    for (int i = 0; i < n; i++)
        s += tmp[i];
    return s;
}
