/* zoneinit: the cheapest zone init there is, exec'd by zonefork as each
 * zone's PID 1. Built static, so an exec maps one small file and runs no
 * dynamic loader; it exits 0 at once (the zone boots, then shuts down). */
int main(void)
{
	return 0;
}
